"""The decision rule of notebook 02: bootstrap intervals and the three verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from ca2sis_lib.claims import bootstrap_ci, describe_interval, judge, verdict


def test_interval_is_seeded_ordered_and_covers_the_mean():
    diff = np.random.default_rng(1).normal(0.3, 1.0, size=200)
    lo, hi = bootstrap_ci(diff, n=2000, seed=7)
    assert lo < diff.mean() < hi
    assert (lo, hi) == bootstrap_ci(diff, n=2000, seed=7)  # same seed, same interval
    # the interval's half-width is about 1.96 standard errors of the mean
    assert abs((hi - lo) / 2 - 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)) < 0.03


def test_interval_drops_nans_and_rejects_too_little_data():
    assert bootstrap_ci([1.0, np.nan, 2.0, 3.0], n=500) == bootstrap_ci([1.0, 2.0, 3.0], n=500)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_ci([1.0, 2.0], n=10)


@pytest.mark.parametrize(("ci", "direction", "level_ok", "expected"), [
    ((0.1, 0.3), 1, True, "agrees"),  # above zero, as claimed, level fine
    ((0.1, 0.3), 1, False, "inconclusive"),  # better, but the level does not mean what the claim says
    ((0.1, 0.3), 1, None, "agrees"),  # no absolute level to check
    ((-0.3, -0.1), 1, True, "disagrees"),  # below zero where the claim predicts above
    ((-0.1, 0.2), 1, True, "inconclusive"),  # contains zero
    ((-0.3, -0.1), -1, True, "agrees"),  # lower is better
    ((0.1, 0.3), -1, None, "disagrees"),
    ((0.0, 0.3), 1, True, "inconclusive"),  # touching zero does not exclude it
])
def test_verdict_rule(ci, direction, level_ok, expected):
    assert verdict(ci, direction, level_ok) == expected


def test_verdict_rejects_bad_input():
    with pytest.raises(ValueError, match="direction"):
        verdict((0.1, 0.2), 0)
    with pytest.raises(ValueError, match="ordered"):
        verdict((0.2, 0.1), 1)


def test_judge_on_clear_and_null_differences():
    rng = np.random.default_rng(0)
    better = judge(rng.normal(0.5, 0.2, 100), direction=1, level=0.7, level_ok=True)
    assert better["verdict"] == "agrees" and better["ci95"][0] > 0 and better["pairs"] == 100
    null = judge(rng.normal(0.0, 1.0, 100), direction=1)
    assert null["verdict"] == "inconclusive" and null["ci95"][0] < 0 < null["ci95"][1] and null["level"] is None
    worse = judge(rng.normal(-0.5, 0.2, 100), direction=1)
    assert worse["verdict"] == "disagrees"
    assert describe_interval({"difference": 0.0123, "ci95": [0.004, 0.02]}) == "+0.012 [+0.004, +0.020]"
