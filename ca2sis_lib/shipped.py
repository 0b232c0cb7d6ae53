"""The toy checkpoints shipped with the package, in ``ca2sis_lib/weights/``.

``make checkpoints`` trains the tiny CA²-SIS and the tiny SEAN-style model on the toy data and
exports each generator here: its EMA weights in float16 (a few MB), the resolved config, the
training log, and a SHA-256 recorded in ``manifest.json`` that the loader checks, so a corrupted
or hand-edited file is refused instead of producing strange images.

They are package data, so they load from any install (``pip install .`` or from a git URL), not
only from a clone. :func:`ca2sis_lib.loading.load_model` loads them by name.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from .checkpoint_io import check_weights, load_checkpoint, save_atomic, sha256, to_float, to_half
from .models.factory import MAPPING_PREFIX, generator_from_config_dict, mark_random_mapping, split_mapping
from .owned_folder import NotOurFolder

SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
FORMAT = "ca2sis-generator-v1"


def read_manifest(folder: Path) -> dict[str, Any]:
    """``folder/manifest.json`` (name -> {"file", "sha256", ...}), ``{}`` when there is none; a damaged
    one is refused with how to restore it."""
    path = folder / "manifest.json"
    if not path.exists():
        return {}
    fix = ("restore it (git checkout -- ca2sis_lib/weights/manifest.json in a clone, or reinstall ca2sis_lib)"
           if folder.resolve() == SHIPPED_DIR else "restore it, or export the models again (make checkpoints)")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}), so no model file there can be verified: {fix}") from None
    entries_ok = isinstance(manifest, dict) and all(
        isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("sha256"), str)
        for e in manifest.values())
    if not entries_ok:
        raise ValueError(f"{path} is damaged: it must map each model's name to {{\"file\": ..., \"sha256\": ...}}, so "
                         f"no model file there can be verified: {fix}")
    return manifest


def check_replaceable(dest: Path, name: str) -> None:
    """Refuse to overwrite ``dest/<name>.pt`` unless it is the export ``manifest.json`` records for
    ``name``, unchanged: an export replaces only its own files (ca2sis_lib.owned_folder's rule)."""
    path = dest / f"{name}.pt"
    if not path.exists():
        return
    entry = read_manifest(dest).get(name)
    if entry is None or entry["file"] != path.name:
        why = f"{dest / 'manifest.json'} does not list it as the export {name!r}"
    elif sha256(path) != entry["sha256"]:
        why = "it was changed since it was exported (its SHA-256 is not the one manifest.json records)"
    else:
        return
    raise NotOurFolder(f"{path} exists and {why}: exporting would overwrite a file no export made. Fix: move it "
                       "away (or restore it with git), then export again.")


def export_generator(run_dir: str | Path, name: str, dest: str | Path = SHIPPED_DIR,
                     parts: tuple[str, ...] = ("generator",), extra: dict[str, Any] | None = None) -> Path:
    """Export a finished training run as a shipped generator file (EMA weights when present, fp16).

    The untrained mapping network of a reconstruction run is left out (it is random); a mapping
    stage run exports only ``mapping.*`` with ``parts=("mapping",)``.
    """
    run_dir, dest = Path(run_dir), Path(dest)
    check_replaceable(dest, name)
    state = load_checkpoint(run_dir / "checkpoint.pt")
    weights = state["ema"] if state.get("ema") is not None else state["generator"]
    rest, mapping = split_mapping(weights)
    weights = mapping if parts == ("mapping",) else rest
    payload = {
        "format": FORMAT, "family": state["family"], "step": state["step"], "parts": list(parts),
        "model_config": state["model_config"], "train_config": state["train_config"],
        "weights": to_half(weights),
    }
    path = save_atomic(payload, dest / f"{name}.pt")
    for source, target in (("log.csv", f"{name}.log.csv"), ("config.yaml", f"{name}.config.yaml")):
        if (run_dir / source).exists():
            shutil.copyfile(run_dir / source, dest / target)
    manifest = read_manifest(dest)
    manifest[name] = {"file": path.name, "sha256": sha256(path), "family": state["family"], "step": state["step"],
                      "parts": list(parts), **(extra or {})}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def verify(path: str | Path) -> None:
    """Check a shipped file against the SHA-256 in its folder's manifest.

    A file whose folder's manifest does not list it (a shipped file copied elsewhere) is accepted
    when its SHA-256 equals that of a file in the package's own manifest: it is an intact copy.
    Anything else is refused; ``load_shipped_file(path, check=False)`` loads a file you trust unverified.
    """
    path = Path(path)
    entry = next((e for e in read_manifest(path.parent).values() if e["file"] == path.name), None)
    actual = sha256(path)
    if entry is None:
        if any(e["sha256"] == actual for e in read_manifest(SHIPPED_DIR).values()):
            return  # an intact copy of a shipped file
        raise ValueError(
            f"{path.name} is not listed in {path.parent / 'manifest.json'} and its SHA-256 ({actual[:16]}…) matches "
            f"no shipped file in {SHIPPED_DIR / 'manifest.json'}, so it cannot be verified; if you trust it, load "
            "it with ca2sis_lib.shipped.load_shipped_file(path, check=False)"
        )
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
    model = generator_from_config_dict(state["family"], state["model_config"])
    check_weights(model, state["weights"], path)
    missing, unexpected = model.load_state_dict(to_float(state["weights"]), strict=False)
    if unexpected or any(not k.startswith(MAPPING_PREFIX) for k in missing):
        raise ValueError(f"{path} does not fit its config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    mapping_file = path.with_name(path.stem + "_mapping.pt")  # trained mapping network, when shipped
    if any(k.startswith(MAPPING_PREFIX) for k in missing) and mapping_file.exists():
        if check:
            verify(mapping_file)
        mapping = load_checkpoint(mapping_file, map_location=map_location)["weights"]
        model.load_state_dict(to_float(mapping), strict=False)
    elif any(k.startswith(MAPPING_PREFIX) for k in missing):
        fix = ("restore it (git checkout in a clone, or reinstall ca2sis_lib) or rebuild it with `make checkpoints "
               f"ONLY={mapping_file.stem}`" if path.parent == SHIPPED_DIR
               else f"export the mapping stage's run as {mapping_file.name} beside it")
        mark_random_mapping(model, f"{path.name} holds no mapping network and {mapping_file.name} is not beside it; "
                                   f"{fix}")
    return model.eval()


def shipped_available(name: str) -> bool:
    return (SHIPPED_DIR / f"{name}.pt").exists()


def shipped_quality(name: str) -> dict[str, Any]:
    """What `make checkpoints` measured for the shipped model ``name`` (its entry in quality.json),
    or ``{}`` when nothing is recorded."""
    path = SHIPPED_DIR / "quality.json"
    return json.loads(path.read_text()).get(name, {}) if path.exists() else {}


def _times(ratio: float) -> str:
    """A ratio as '10×', '2,000×' or '0.67×'."""
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


@dataclass(frozen=True)
class TrainingGap:
    """How much more training a shipped model had than a run of ours: in steps and in images seen."""

    name: str
    shipped_steps: int | None  # from manifest.json (or quality.json)
    shipped_batch: int | None  # from the shipped <name>.config.yaml
    shipped_preset: str | None  # from quality.json
    run_steps: int
    run_batch: int
    run_preset: str

    @property
    def steps_ratio(self) -> float | None:
        return self.shipped_steps / self.run_steps if self.shipped_steps and self.run_steps else None

    @property
    def images_ratio(self) -> float | None:
        if self.steps_ratio is None or not self.shipped_batch or not self.run_batch:
            return None
        return self.steps_ratio * self.shipped_batch / self.run_batch

    def __str__(self) -> str:
        lines = []
        if self.steps_ratio is not None:
            line = (f"the shipped model trained {self.shipped_steps} steps, {_times(self.steps_ratio)} this run's "
                    f"{self.run_steps}")
            if self.images_ratio is not None:
                line += (f"; at batch {self.shipped_batch} against this run's {self.run_batch}, it saw "
                         f"{_times(self.images_ratio)} as many images")
            lines.append(line)
        if self.shipped_preset and self.shipped_preset != self.run_preset:
            lines.append(f"note: this run used preset {self.run_preset!r}, the shipped model {self.shipped_preset!r}: "
                         "the gap below is not only one of training length")
        return "\n".join(lines)


def training_gap(name: str, steps: int, batch_size: int, preset: str) -> TrainingGap:
    """Compare a run of ``steps`` at ``batch_size`` with the shipped model ``name``, as its folder records it
    (manifest.json, its config.yaml, quality.json)."""
    recorded = shipped_quality(name)
    shipped_steps = read_manifest(SHIPPED_DIR).get(name, {}).get("step", recorded.get("steps"))
    config = SHIPPED_DIR / f"{name}.config.yaml"  # its resolved training config
    train = (yaml.safe_load(config.read_text()) or {}).get("train", {}) if config.exists() else {}
    return TrainingGap(name, shipped_steps if isinstance(shipped_steps, int) else None, train.get("batch_size"),
                       recorded.get("preset"), steps, batch_size, preset)

