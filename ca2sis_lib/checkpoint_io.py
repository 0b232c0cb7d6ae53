"""Training checkpoints: atomic writes, safe loads, and a clear error for a checkpoint of another config.

A checkpoint is a plain dict of tensors, numbers, strings and lists, so it loads with
``torch.load(..., weights_only=True)`` (no pickled code runs). It is first written to a temporary
file in the same folder and then renamed over the old one: a run killed while saving leaves the
previous checkpoint intact, never a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_atomic(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read checkpoint {path}: {error}. Is it a complete ca2sis checkpoint?") from error


def config_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two config dicts (empty when they agree)."""
    keys = sorted(set(saved) | set(current))
    return [
        f"{k}: checkpoint has {saved.get(k, '<missing>')!r}, this run has {current.get(k, '<missing>')!r}"
        for k in keys
        if saved.get(k, "<missing>") != current.get(k, "<missing>")
    ]


def check_same_config(saved: dict[str, Any], current: dict[str, Any], what: str = "model") -> None:
    diffs = config_mismatch(saved, current)
    if diffs:
        raise ValueError(
            f"checkpoint was made for another {what} config: " + "; ".join(diffs)
            + ". Build the model from the checkpoint's config, or start a new run in another folder."
        )


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over a state dict's tensors (names and bytes), e.g. to compare DDP ranks."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def to_half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors to float16 (shipped files: half the size), the rest unchanged."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def to_float(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`to_half`: floating-point tensors back to float32 for computing."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
