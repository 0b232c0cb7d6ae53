"""The valid range of every training setting, checked when a :class:`~.config.TrainConfig` is built.

All problems are reported at once, each with the range it must lie in, so a bad ``--set`` fails in
a second with ``error: ...`` instead of a ``ZeroDivisionError`` after a step of work.
"""

from __future__ import annotations

import math
from typing import Any

COUNTS = ("steps", "batch_size", "log_every", "sample_every", "checkpoint_every", "toy_samples",
          "code_images", "code_axes")  # whole, >= 1
WEIGHTS = ("lambda_gan", "lambda_fm", "lambda_vgg", "lambda_l1", "lambda_attn", "attn_pos_weight_max",
           "lambda_diversity", "lambda_code")  # >= 0
SEED_LIMIT = 2**32  # seeds are mixed with the step into 64-bit generator seeds


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(name: str, value: Any, low: int, high: int | None = None, optional: bool = False) -> list[str]:
    if optional and value is None:
        return []
    ok = _is_int(value) and value >= low and (high is None or value <= high)
    if ok:
        return []
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    none = " or None" if optional else ""
    return [f"{name}={value!r} must be a whole number {allowed}{none}"]


def _ranges(cfg: Any) -> list[str]:
    problems: list[str] = []
    for name in COUNTS:
        problems += _whole(name, getattr(cfg, name), 1)
    problems += _whole("num_workers", cfg.num_workers, 0)
    if not (_is_int(cfg.code_samples) and cfg.code_samples >= 2):
        problems.append(f"code_samples={cfg.code_samples!r} must be a whole number >= 2 (noise draws per step "
                        "for L_code)")
    elif _is_int(cfg.code_images) and cfg.code_samples > cfg.code_images:
        problems.append(f"code_samples={cfg.code_samples} must be <= code_images={cfg.code_images} (each draw is "
                        "compared with a different real image's codes)")
    problems += _whole("max_steps_this_run", cfg.max_steps_this_run, 1, optional=True)
    problems += _whole("load_size", cfg.load_size, 1, optional=True)
    for name in ("seed", "data_seed"):
        problems += _whole(name, getattr(cfg, name), 0, SEED_LIMIT - 1)
    if _is_int(cfg.steps):
        problems += [p + " (the step at which the learning rate starts its linear decay to 0; None = constant)"
                     for p in _whole("decay_start", cfg.decay_start, 0, cfg.steps, optional=True)]
    for name in ("lr_g", "lr_d"):
        value = getattr(cfg, name)
        if not (_is_number(value) and value > 0):
            problems.append(f"{name}={value!r} must be a finite number > 0")
    betas = cfg.betas
    if not (isinstance(betas, tuple) and len(betas) == 2 and all(_is_number(b) and 0 <= b < 1 for b in betas)):
        problems.append(f"betas={betas!r} must be a pair of numbers in [0, 1), e.g. [0.0, 0.9]")
    for name in WEIGHTS:
        value = getattr(cfg, name)
        if not (_is_number(value) and value >= 0):
            problems.append(f"{name}={value!r} must be a finite number >= 0 (0 switches the term off)")
    if not (_is_number(cfg.ema_decay) and 0 <= cfg.ema_decay < 1):
        problems.append(f"ema_decay={cfg.ema_decay!r} must be in [0, 1) (0 = no EMA generator; 0.995 or 0.999 "
                        "are usual)")
    if cfg.data == "toy" and _is_int(cfg.toy_samples) and _is_int(cfg.batch_size) and cfg.toy_samples < cfg.batch_size:
        problems.append(f"toy_samples={cfg.toy_samples} must be >= batch_size={cfg.batch_size} (one batch at least)")
    return problems


def _kinds(cfg: Any) -> list[str]:
    problems = []
    if not isinstance(cfg.model_overrides, dict):
        problems.append(f"model_overrides={cfg.model_overrides!r} must be a mapping of model config keys, e.g. "
                        "{num_classes: 19}")
    else:
        try:
            cfg.model_config()  # each override of the model's type and range, before any work
        except ValueError as error:
            problems.append(str(error))
    for name in ("data", "out_dir", "device"):
        value = getattr(cfg, name)
        if not isinstance(value, str) or not value:
            problems.append(f"{name}={value!r} must be a non-empty text")
    if isinstance(cfg.device, str) and cfg.device != "auto":
        import torch

        try:
            torch.device(cfg.device)
        except (RuntimeError, ValueError):
            problems.append(f"device={cfg.device!r} is not a device: use 'auto', 'cpu', 'cuda', 'cuda:1', 'mps' ...")
    return problems


def check_settings(cfg: Any) -> None:
    """Raise ``ValueError`` listing every setting of ``cfg`` (a TrainConfig, typed loosely: config.py
    imports this module) outside its valid range, with the range."""
    problems = _kinds(cfg) + _ranges(cfg)
    if problems:
        raise ValueError("invalid training settings: " + "; ".join(problems))
