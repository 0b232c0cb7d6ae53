"""The toy checkpoints shipped in data/checkpoints/, and one loader for every kind of weights.

``make checkpoints`` trains the tiny CA²-SIS and the tiny SEAN-style model on the toy data and
exports each generator here: its EMA weights in float16 (a few MB), the resolved config, the
training log, and a SHA-256 recorded in ``manifest.json`` that the loader checks, so a corrupted
or hand-edited file is refused instead of producing strange images.

``load_model`` accepts any of: a shipped name (``"ca2sis_tiny_toy"``), a shipped file, a training
``checkpoint.pt``, or ``"official:<path>"`` (the authors' released CelebAMask-HQ generator).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from torch import nn

from .checkpoint_io import load_checkpoint, save_atomic, sha256
from .notebook import DATA_DIR

SHIPPED_DIR = DATA_DIR / "checkpoints"
FORMAT = "ca2sis-generator-v1"


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def export_generator(run_dir: str | Path, name: str, dest: str | Path = SHIPPED_DIR,
                     parts: tuple[str, ...] = ("generator",), extra: dict[str, Any] | None = None) -> Path:
    """Export a finished training run as a shipped generator file (EMA weights when present, fp16).

    The untrained mapping network of a reconstruction run is left out (it is random); a mapping
    stage run exports only ``mapping.*`` with ``parts=("mapping",)``.
    """
    run_dir, dest = Path(run_dir), Path(dest)
    state = load_checkpoint(run_dir / "checkpoint.pt")
    weights = state["ema"] if state.get("ema") is not None else state["generator"]
    if parts == ("mapping",):
        weights = {k: v for k, v in weights.items() if k.startswith("mapping.")}
    else:
        weights = {k: v for k, v in weights.items() if not k.startswith("mapping.")}
    payload = {
        "format": FORMAT, "family": state["family"], "step": state["step"], "parts": list(parts),
        "model_config": state["model_config"], "train_config": state["train_config"],
        "weights": {k: v.half() if v.is_floating_point() else v for k, v in weights.items()},
    }
    path = save_atomic(payload, dest / f"{name}.pt")
    for source, target in (("log.csv", f"{name}.log.csv"), ("config.yaml", f"{name}.config.yaml")):
        if (run_dir / source).exists():
            shutil.copyfile(run_dir / source, dest / target)
    manifest = _manifest(dest)
    manifest[name] = {"file": path.name, "sha256": sha256(path), "family": state["family"], "step": state["step"],
                      "parts": list(parts), **(extra or {})}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def verify(path: str | Path) -> None:
    """Check a shipped file against the SHA-256 in its folder's manifest."""
    path = Path(path)
    entry = next((e for e in _manifest(path.parent).values() if e["file"] == path.name), None)
    if entry is None:
        raise ValueError(f"{path.name} is not listed in {path.parent / 'manifest.json'}; cannot verify it")
    actual = sha256(path)
    if actual != entry["sha256"]:
        raise ValueError(
            f"{path} does not match its SHA-256 in manifest.json (expected {entry['sha256'][:16]}…, got "
            f"{actual[:16]}…): the file is corrupted or was changed. Restore it with `git checkout -- {path}` "
            "or rebuild it with `make checkpoints`."
        )


def load_shipped_file(path: str | Path, check: bool = True, map_location: str = "cpu") -> nn.Module:
    path = Path(path)
    if check:
        verify(path)
    state = load_checkpoint(path, map_location=map_location)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a shipped ca2sis generator (format {state.get('format')!r})")
    from .train import generator_from_config_dict

    model = generator_from_config_dict(state["family"], state["model_config"])
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state["weights"].items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith("mapping.") for k in missing):
        raise ValueError(f"{path} does not fit its config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    mapping_file = path.with_name(path.stem + "_mapping.pt")  # trained mapping network, when shipped
    if "mapping.shared.0.weight" in missing and mapping_file.exists():
        if check:
            verify(mapping_file)
        mapping = load_checkpoint(mapping_file, map_location=map_location)["weights"]
        model.load_state_dict({k: v.float() for k, v in mapping.items()}, strict=False)
    return model.eval()


def resolve(source: str | Path) -> Path:
    """A file path, or the name of a shipped model (``"ca2sis_tiny_toy"``) -> an existing path."""
    text = str(source)
    path = Path(text)
    if not path.suffix and (SHIPPED_DIR / f"{text}.pt").exists():
        path = SHIPPED_DIR / f"{text}.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {text!r}: give a path, a shipped name "
                                f"({sorted(p.stem for p in SHIPPED_DIR.glob('*.pt'))}) or official:<path>")
    return path


def load_model(source: str | Path, map_location: str = "cpu") -> nn.Module:
    """Shipped name or file, training checkpoint, or ``official:<path>`` -> generator in eval mode."""
    text = str(source)
    if text.startswith("official:"):
        from .checkpoints import load_official

        return load_official(text.split(":", 1)[1], map_location=map_location)
    path = resolve(text)
    state = load_checkpoint(path, map_location=map_location)
    if state.get("format") == FORMAT:
        return load_shipped_file(path, map_location=map_location)
    from .train import load_generator

    return load_generator(path, map_location=map_location)


def shipped_available(name: str) -> bool:
    return (SHIPPED_DIR / f"{name}.pt").exists()
