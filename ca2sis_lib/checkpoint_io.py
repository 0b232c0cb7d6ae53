"""Training checkpoints: atomic writes, safe loads, and a clear error for a checkpoint of another config.

A checkpoint is a plain dict of tensors, numbers, strings and lists, so it loads with
``torch.load(..., weights_only=True)`` (no pickled code runs). It is first written to a temporary
file in the same folder and then renamed over the old one: a run killed while saving leaves the
previous checkpoint intact, never a half-written file; the next run in that folder deletes such
leftovers (:func:`remove_partial_writes`). A failed write (a full disk, a read-only folder) raises
:class:`CheckpointWriteError`: one line naming the folder, the system's reason and what to do.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .contract import outside_caller, unreadable_checkpoint_reason


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the message names the folder, the reason and the fix."""


class CheckpointReadError(ValueError):
    """A file that is not a readable checkpoint; ``reason`` says why in a few words (torch's error, if
    any, is the cause)."""

    def __init__(self, path: Path, reason: str, message: str | None = None) -> None:
        self.path, self.reason = path, reason
        super().__init__(message or f"cannot read checkpoint {path}: {reason}. Is it a complete ca2sis checkpoint "
                                    "(the checkpoint.pt a training run writes)?")


_TEMP_SUFFIX = ".tmp"


def partial_write_pattern(name: str) -> re.Pattern[str]:
    """The names :func:`save_atomic` gives its temporary files for ``name`` (``.name.XXXXXXXX.tmp``)."""
    return re.compile(rf"\.{re.escape(name)}\.[A-Za-z0-9_]{{8}}{re.escape(_TEMP_SUFFIX)}")


def remove_partial_writes(folder: str | Path, name: str, older_than: float | None = None) -> list[Path]:
    """Delete what interrupted :func:`save_atomic` calls for ``folder/name`` left behind (only files
    of its own temporary pattern, last modified before ``older_than``, default now); returns them."""
    folder, limit = Path(folder), time.time() if older_than is None else older_than
    pattern = partial_write_pattern(name)
    removed = []
    for path in folder.glob(f".{name}.*{_TEMP_SUFFIX}") if folder.is_dir() else ():
        if pattern.fullmatch(path.name) and path.is_file() and path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _os_error_in(error: BaseException) -> OSError | None:
    """The OSError behind ``error``: itself, or one torch wrapped (``[enforce fail at inline_container.cc]``)."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _write_error(error: BaseException, path: Path) -> CheckpointWriteError | None:
    """One clear error for a failed write, or None when ``error`` is not about writing the file."""
    os_error = _os_error_in(error)
    if os_error is None and not (isinstance(error, RuntimeError) and "inline_container" in str(error)):
        return None
    code = getattr(os_error, "errno", None)
    reason = f"{os.strerror(code)} (errno {code})" if code else str(os_error or error).strip()
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        fix = "free space there or choose another --out (out_dir)"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make the folder writable or choose another --out (out_dir)"
    else:
        fix = "check the disk, or choose another --out (out_dir)"
    try:
        free = f"; {shutil.disk_usage(path.parent).free / 2**20:,.0f} MiB free there"
    except OSError:
        free = ""
    message = f"could not write {path.name} to {path.parent}: {reason}{free}; {fix}"
    clear = CheckpointWriteError(message)  # OSError(code, text) would print as "[Errno 28] text"
    clear.errno = code or errno.EIO
    return clear


def save_atomic(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_via_temporary_file(obj, path)
    except (OSError, RuntimeError) as error:
        clear = _write_error(error, path)
        if clear is None:
            raise
        raise clear from error
    return path


def _save_via_temporary_file(obj: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
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


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        reason = unreadable_checkpoint_reason(error) or str(error)  # never torch's advice to load unsafely
        raise CheckpointReadError(path, reason) from error
    if not isinstance(state, dict):  # e.g. torch.save(101, path): a number, or a bare tensor
        raise CheckpointReadError(path, f"it holds a {type(state).__name__}, not a dict")
    return state


def require_keys(state: dict[str, Any], keys: tuple[str, ...], path: str | Path, what: str) -> None:
    """Raise :class:`CheckpointReadError` unless ``state`` (read from ``path``) has every one of ``keys``."""
    missing = [key for key in keys if key not in state]
    if missing:
        raise CheckpointReadError(Path(path), f"it is not {what}: it has no {missing} (its keys: "
                                              f"{sorted(map(str, state))[:8]})")


class NonFiniteWeightsWarning(UserWarning):
    """Weights that hold NaN or inf: the model they make draws NaN images."""


def check_weights(model: nn.Module, state: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """Before ``model.load_state_dict(state)``: refuse integer tensors where the model holds floating-point
    ones (load_state_dict would copy the truncated values without a word) and warn when weights hold
    NaN or inf (a diverged run's). ``source`` names the file in the messages."""
    own = model.state_dict()
    integers = [f"{k} ({v.dtype})" for k, v in state.items()
                if k in own and own[k].is_floating_point() and not (v.is_floating_point() or v.is_complex())]
    if integers:
        raise CheckpointReadError(Path(source), "integer weights", (
            f"{source}: {len(integers)} weight tensor(s) hold integers where the model's weights are floating point "
            f"(e.g. {integers[0]}): their fractions were cut off when they were converted, so the model would "
            "compute with wrong weights. Fix: load the original file, saved before the conversion."))
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        warnings.warn(f"{source}: {len(broken)} of {len(state)} weight tensors hold NaN or inf values (e.g. "
                      f"{broken[0]}), so the model draws NaN images. Fix: load an earlier checkpoint of that run "
                      "(training stops before it saves a non-finite loss) or retrain it with a lower learning rate.",
                      NonFiniteWeightsWarning, stacklevel=outside_caller()[1])


def config_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two config dicts (empty when they agree)."""
    keys = sorted(set(saved) | set(current))
    return [
        f"{k}: checkpoint has {saved.get(k, '<missing>')!r}, this run has {current.get(k, '<missing>')!r}"
        for k in keys
        if saved.get(k, "<missing>") != current.get(k, "<missing>")
    ]


def require_same_config(saved: dict[str, Any], current: dict[str, Any], what: str = "model") -> None:
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
