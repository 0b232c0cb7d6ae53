"""An honest resume: which settings may change, the checks that refuse every other change, and the
record of what each part of a run ran with.

A run folder holds one run. Resuming continues it only if the run stays the same run: the model,
the data and its order (the checkpoint records the training files; another list is refused unless
``allow_data_change`` accepts it, :func:`check_same_data`), the losses and their weights, the
optimiser and the EMA. The settings in
:data:`ALLOWED_ON_RESUME` may change; each change is recorded in the checkpoint's ``parts`` list (and
in ``config.yaml``), one entry per part: the step it started at, the last step it saved and what
it changed. Every other change is refused before anything is loaded or written, naming the setting
and both values.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..checkpoint_io import require_same_config
from .config import TrainConfig

# setting -> why changing it keeps the run the same run
ALLOWED_ON_RESUME: dict[str, str] = {
    "steps": "extends the run (or ends it sooner, never before the checkpoint's step); the decay follows it",
    "decay_start": "moves the start of the learning-rate decay, e.g. together with steps",
    "max_steps_this_run": "this session's budget of steps",
    "log_every": "how often a row goes to log.csv",
    "sample_every": "how often a sample grid is saved",
    "checkpoint_every": "how often the run is saved",
    "progress": "the progress bar",
    "num_workers": "data-loading processes; the batches stay the same (each item's augmentation has its own seed)",
    "allow_data_change": "accepts another list of training files (the change is recorded in the run's parts)",
    "device": "where the run continues (e.g. CPU to GPU); the state moves with it",
    "channels_last": "a memory layout: the same maths",
    "out_dir": "the folder may have been moved or renamed",
    "vgg_download": "only whether VGG19 may be downloaded; the perceptual loss in use is checked separately",
}


class ResumeError(ValueError):
    """A resume that would not continue the same run; the message names the setting and both values."""


def _refuse(checkpoint: Path, what: str) -> ResumeError:
    return ResumeError(f"cannot resume from {checkpoint}: {what}. Put it back, or start a new run in another "
                       f"--out (out_dir). Only these settings may change on resume: {sorted(ALLOWED_ON_RESUME)}.")


def check_resume(state: dict[str, Any], cfg: TrainConfig, model_config: dict[str, Any], world: int,
                 perceptual: str, checkpoint: Path) -> None:
    """Raise :class:`ResumeError` unless ``cfg`` continues the run that wrote ``state``."""
    require_same_config(state["model_config"], model_config)
    saved, now = state["train_config"], cfg.to_dict()
    if state.get("ema") is not None and cfg.ema_decay == 0:
        raise _refuse(checkpoint, f"the checkpoint holds EMA weights (ema_decay={saved.get('ema_decay')}, the "
                                  "weights that get exported) and ema_decay=0 would drop them; keep "
                                  f"ema_decay={saved.get('ema_decay')}")
    if state.get("ema") is None and cfg.ema_decay > 0:
        raise _refuse(checkpoint, f"the checkpoint has no EMA weights (it ran with ema_decay=0), so "
                                  f"ema_decay={cfg.ema_decay} has no average to continue; keep ema_decay=0")
    fixed = [f"{k} (checkpoint {saved[k]!r}, this run {now[k]!r})"
             for k in now if k in saved and k not in ALLOWED_ON_RESUME and saved[k] != now[k]]
    if fixed:
        raise _refuse(checkpoint, "these settings differ from the run that wrote it: " + "; ".join(fixed))
    if state.get("perceptual", perceptual) != perceptual:
        raise _refuse(checkpoint, f"the perceptual term was {state['perceptual']!r} and would now be "
                                  f"{perceptual!r} (VGG19 weights found or lost); make the same weights available")
    if cfg.steps < int(state["step"]):
        raise _refuse(checkpoint, f"the checkpoint is at step {state['step']} and steps={cfg.steps} ends before it; "
                                  f"set steps >= {state['step']}")
    if state.get("world_size", 1) != world:  # batches are sharded per rank: keep the same count
        raise _refuse(checkpoint, f"it was written by {state.get('world_size', 1)} process(es) and this run has "
                                  f"{world}; resume with the same --nproc_per_node")


def check_same_data(saved: list[str] | None, now: list[str] | None, allowed: bool,
                    checkpoint: Path) -> dict[str, Any] | None:
    """None when the training files are those the checkpoint recorded (or it recorded none: toy data,
    or an older checkpoint). Otherwise raise :class:`ResumeError` naming what was removed and added,
    or, when ``allowed``, return that difference for the run's record."""
    if saved is None or now is None or list(saved) == list(now):
        return None
    removed, added = sorted(set(saved) - set(now)), sorted(set(now) - set(saved))
    shown = lambda names: ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    difference = "; ".join(f"{len(names)} {what} ({shown(names)})" for what, names in
                           (("removed", removed), ("added", added)) if names) or "the same files in another order"
    if not allowed:
        raise ResumeError(f"cannot resume from {checkpoint}: the training files differ from the {len(saved)} it "
                          f"was trained on: {difference}. The batches from here on would differ from those of the "
                          "run so far. Put the files back, or accept the change with --set allow_data_change=true "
                          "(recorded in the run's parts).")
    return {"files_before": len(saved), "files_now": len(now), "removed": removed[:100], "added": added[:100]}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def first_part() -> list[dict[str, Any]]:
    """The record of a fresh run: one part, from step 0."""
    return [{"start_step": 0, "end_step": 0, "started": _now(), "changed": {}}]


def next_part(state: dict[str, Any], cfg: TrainConfig) -> list[dict[str, Any]]:
    """The checkpoint's parts and a new one from its step, with the allowed settings this part changes."""
    saved, now = state["train_config"], cfg.to_dict()
    step = int(state["step"])
    parts = [dict(p) for p in state.get("parts") or [{"start_step": None, "end_step": step, "changed": {}}]]
    changed = {k: {"from": saved[k], "to": now[k]} for k in ALLOWED_ON_RESUME if k in saved and saved[k] != now[k]}
    return parts + [{"start_step": step, "end_step": step, "started": _now(), "changed": changed}]
