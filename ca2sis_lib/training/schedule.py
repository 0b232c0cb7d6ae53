"""What changes with the step: the learning rate (held, then decayed linearly to zero, the authors'
schedule) and the EMA's decay (optionally warmed up)."""

from __future__ import annotations

from .config import TrainConfig


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """1 until ``decay_start``, then linearly down to 0 at ``steps`` (the authors' schedule)."""
    if cfg.decay_start is None or step < cfg.decay_start:
        return 1.0
    return max(0.0, (cfg.steps - step) / max(1, cfg.steps - cfg.decay_start))


def ema_decay_at(step: int, decay: float, warmup: bool) -> float:
    """The EMA's decay at ``step``: ``decay``, or with warm-up ``min(decay, (1 + step) / (10 + step))``,
    so that after a few hundred steps the average no longer holds a fifth of the random initialisation."""
    return min(decay, (1 + step) / (10 + step)) if warmup else decay
