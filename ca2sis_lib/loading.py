"""One loader for every kind of generator weights.

    load_model("ca2sis_tiny_toy")          a shipped toy model, by name (SHA-256 checked)
    load_model("path/to/name.pt")          a shipped file
    load_model("runs/toy/checkpoint.pt")   a training checkpoint (EMA weights when it has them)
    load_model("official:<path>")          the authors' released CelebAMask-HQ generator
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .checkpoint_io import CheckpointReadError, check_weights, load_checkpoint, require_keys
from .contract import unreadable_checkpoint_reason
from .models.factory import generator_from_config_dict, mark_random_mapping
from .segmenter import FORMAT as SEGMENTER_FORMAT
from .shipped import FORMAT, SHIPPED_DIR, load_shipped_file


def load_generator(path: str | Path, use_ema: bool = True, map_location: str = "cpu") -> nn.Module:
    """Rebuild a trained generator from a training checkpoint (family and config come from it)."""
    state = load_checkpoint(path, map_location=map_location)
    require_keys(state, ("family", "model_config", "generator"), path, "a training checkpoint")
    model = generator_from_config_dict(state["family"], state["model_config"])
    weights = state["ema"] if use_ema and state.get("ema") is not None else state["generator"]
    check_weights(model, weights, path)
    model.load_state_dict(weights)
    if state["family"] == "ca2sis" and (state.get("train_config") or {}).get("stage", "reconstruction") != "mapping":
        mark_random_mapping(model, f"{path} is a reconstruction-stage checkpoint, which never trains the mapping "
                                   f"network; train it: python -m ca2sis_lib.train --preset toy-mapping --set "
                                   f"pretrained={path} --out <folder>")
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


def not_a_checkpoint(text: str, reason: str) -> CheckpointReadError:
    """The error for a file ``load_model`` cannot use, saying what a ca2sis checkpoint is and where one comes from."""
    shipped = sorted(p.stem for p in SHIPPED_DIR.glob("*.pt"))
    return CheckpointReadError(
        Path(text), reason,
        f"{text!r} is not a ca2sis checkpoint: {reason}. A ca2sis checkpoint is a .pt file of tensors, numbers and "
        "strings written by ca2sis_lib: the checkpoint.pt a training run writes to its output folder (python -m "
        "ca2sis_lib.train --preset toy-ca2sis --out runs/toy makes runs/toy/checkpoint.pt), or a shipped model, "
        f"loaded by name ({shipped}). For the authors' weights use official:<path to latest_net_G.pth>."
    )


def load_model(source: str | Path, map_location: str = "cpu") -> nn.Module:
    """Shipped name or file, training checkpoint, or ``official:<path>`` -> generator in eval mode.

    A file that is not a ca2sis checkpoint (a text file, pickled objects, a cut-off download) raises
    ``ValueError`` saying so first, with torch's own error chained as its cause."""
    text = str(source)
    if text.startswith("official:"):
        from .official_weights import load_official  # optional path: reads the authors' file format

        return load_official(text.split(":", 1)[1], map_location=map_location)
    path = resolve(text)
    try:
        state = load_checkpoint(path, map_location=map_location)
    except CheckpointReadError as error:  # torch's error, if any, is its cause
        reason = error.reason if error.__cause__ is None else unreadable_checkpoint_reason(error.__cause__)
        if reason is None:
            raise
        raise not_a_checkpoint(text, reason) from error.__cause__
    if state.get("format") == FORMAT:
        return load_shipped_file(path, map_location=map_location)
    if state.get("format") == SEGMENTER_FORMAT:
        raise ValueError(f"{text!r} is the toy segmenter (a label predictor), not a generator: load it with "
                         "ca2sis_lib.segmenter.load_segmenter()")
    if "family" not in state or "model_config" not in state:
        raise ValueError(f"{path} is neither a shipped generator nor a training checkpoint (it has no 'family' "
                         f"and 'model_config'; keys: {sorted(state)[:8]})")
    return load_generator(path, map_location=map_location)
