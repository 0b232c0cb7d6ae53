"""Judging a claim with its uncertainty: a paired bootstrap interval and a three-way verdict.

Notebook 02 compares two models on the same held-out pairs, so each pair gives one *difference*
(model minus baseline). The rule, stated once here so that it can be tested:

* **agrees** — the 95 % bootstrap interval of the mean difference lies entirely on the side the
  claim predicts (above zero for "higher is better", below for "lower is better") *and* the
  absolute level means what the claim says (e.g. more than half of the pairs lit like A);
* **disagrees** — the interval lies entirely on the other side of zero;
* **inconclusive** — anything else: the interval contains zero, or the difference goes the
  claimed way but the level does not mean what the claim means.

``bootstrap_ci`` resamples pairs with replacement (percentile interval, seeded, so a rerun gives
the same interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Verdict = Literal["agrees", "disagrees", "inconclusive"]
VERDICTS: tuple[str, ...] = ("agrees", "disagrees", "inconclusive")


def bootstrap_ci(diff: Sequence[float] | np.ndarray, n: int = 2000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diff`` (one value per pair; NaNs dropped)."""
    values = np.asarray(diff, dtype=float).ravel()
    values = values[~np.isnan(values)]
    if values.size < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 paired values, got {values.size}: use more pairs")
    if n < 100:
        raise ValueError(f"n={n} resamples is too few for a 95 % interval: use n >= 1000")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n, values.size))  # (n, pairs): n resamples of the pairs
    means = values[idx].mean(axis=1)  # (n,)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def verdict(ci: tuple[float, float], direction: int, level_ok: bool | None = True) -> Verdict:
    """The rule above. ``direction`` +1: the claim predicts a positive difference, -1: negative.

    ``level_ok`` says whether the absolute level means what the claim means (``None``: the claim
    has no absolute level, only the comparison counts).
    """
    lo, hi = ci
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 (higher is better) or -1 (lower is better), got {direction}")
    if not lo <= hi:
        raise ValueError(f"interval must be ordered (lo <= hi), got {ci}")
    claimed = lo > 0 if direction == 1 else hi < 0
    opposite = hi < 0 if direction == 1 else lo > 0
    if claimed and level_ok is not False:
        return "agrees"
    if opposite:
        return "disagrees"
    return "inconclusive"


def judge(diff: Sequence[float] | np.ndarray, direction: int, level: float | None = None,
          level_ok: bool | None = None, n: int = 2000, seed: int = 0) -> dict:
    """Interval, mean difference and verdict of one comparison, ready for metrics.json."""
    values = np.asarray(diff, dtype=float)
    ci = bootstrap_ci(values, n=n, seed=seed)
    return {"difference": float(np.nanmean(values)), "ci95": [ci[0], ci[1]],
            "verdict": verdict(ci, direction, level_ok), "level": None if level is None else float(level),
            "pairs": int((~np.isnan(values)).sum())}


def describe_interval(result: dict, digits: int = 3) -> str:
    """'+0.012 [+0.004, +0.020]': a difference and its 95 % interval, for verdict sentences."""
    lo, hi = result["ci95"]
    return f"{result['difference']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


__all__ = ["Verdict", "VERDICTS", "bootstrap_ci", "verdict", "judge", "describe_interval"]
