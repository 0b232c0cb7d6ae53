"""The decision rule of notebook 02: pair bootstrap intervals, the verdicts, and the claims as data."""

from __future__ import annotations

import numpy as np
import pytest

from ca2sis_lib.claims import (
    CLAIM_TESTS,
    Evidence,
    bootstrap_ci,
    describe_interval,
    interval_verdict,
    judge,
    judge_claims,
    pooled_mean,
    verdict,
)


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
    ((0.1, 0.3), 1, False, "level fails"),  # better, but the level does not mean what the claim says
    ((-0.1, 0.2), 1, False, "level fails"),  # a failed level is a failure, not a "maybe"
    ((-0.3, -0.1), 1, False, "disagrees"),  # the other way is a disagreement whatever the level
    ((0.1, 0.3), 1, None, "agrees"),  # no absolute level to check
    ((-0.3, -0.1), 1, True, "disagrees"),  # below zero where the claim predicts above
    ((-0.1, 0.2), 1, True, "inconclusive"),  # contains zero
    ((-0.3, -0.1), -1, True, "agrees"),  # lower is better
    ((0.1, 0.3), -1, None, "disagrees"),
    ((0.0, 0.3), 1, True, "inconclusive"),  # touching zero does not exclude it
])
def test_verdict_rule(ci, direction, level_ok, expected):
    assert verdict(ci, direction, level_ok) == expected
    if level_ok is not False:  # without a failed level, the verdict is the interval's own
        assert interval_verdict(ci, direction) == expected


def test_a_pair_bootstrap_resamples_pairs_not_edits():
    """Two edits of one pair are one draw: duplicating every value must not narrow the interval."""
    per_pair = np.random.default_rng(3).normal(0.1, 1.0, size=80)
    edits, pair = np.repeat(per_pair, 2), np.repeat(np.arange(80), 2)  # two identical edits per pair
    assert bootstrap_ci(edits, seed=5, clusters=pair) == bootstrap_ci(per_pair, seed=5)
    lo, hi = bootstrap_ci(edits, seed=5)  # as if the 160 edits were independent: too narrow by about √2
    clustered = bootstrap_ci(edits, seed=5, clusters=pair)
    assert (hi - lo) < 0.8 * (clustered[1] - clustered[0])
    with_nan = np.append(edits, np.nan)
    assert bootstrap_ci(with_nan, seed=5, clusters=np.append(pair, 99)) == clustered  # a NaN value drops its pair id
    with pytest.raises(ValueError, match="one id per value"):
        bootstrap_ci(edits, clusters=pair[:-1])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        bootstrap_ci([1.0, 2.0, 3.0], clusters=[7, 7, 7])


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
    failed = judge(rng.normal(0.5, 0.2, 100), direction=1, level=0.3, level_ok=False)
    assert failed["verdict"] == "level fails" and failed["interval_verdict"] == "agrees"
    worse = judge(rng.normal(-0.5, 0.2, 100), direction=1)
    assert worse["verdict"] == "disagrees"
    assert describe_interval({"difference": 0.0123, "ci95": [0.004, 0.02]}) == "+0.012 [+0.004, +0.020]"


def _evidence(pairs: int = 60) -> Evidence:
    """Made-up measurements with known answers: hair edits stay local, mouth edits leak the other way,
    a third of the edits lit like A, the moved nose far under its ceiling, blobs hurt CA²-SIS more."""
    rng = np.random.default_rng(0)
    every, even = np.arange(pairs), np.arange(0, pairs, 6)  # the mouth shows in every sixth pair
    noisy = lambda centre, n: centre + 0.001 * rng.normal(size=n)
    style = {("hair", "CA²-SIS"): {"leakage": noisy(0.010, pairs), "pair": every},
             ("hair", "SEAN"): {"leakage": noisy(0.020, pairs), "pair": every},
             ("mouth", "CA²-SIS"): {"leakage": noisy(0.030, pairs // 6), "pair": even},
             ("mouth", "SEAN"): {"leakage": noisy(0.010, pairs // 6), "pair": even}}
    for (_, model), s in style.items():
        n = len(s["pair"])
        s.update(error_in_class=noisy(0.05, n), unedited_error_in_class=noisy(0.1 if model == "CA²-SIS" else 0.04, n))
    light = {("hair", m): {"lit_like_a": (rng.random(pairs) < share).astype(float), "pair": every}
             for m, share in (("CA²-SIS", 0.3), ("SEAN", 0.25))}
    shape = {("hair", "CA²-SIS", "tokens"): {"miou": noisy(0.7, pairs), "class_iou": noisy(0.6, pairs)},
             ("hair", "SEAN", "mask"): {"miou": noisy(0.6, pairs), "class_iou": noisy(0.3, pairs)},
             ("nose", "CA²-SIS", "tokens"): {"miou": noisy(0.7, pairs), "class_iou": noisy(0.05, pairs)},
             ("nose", "SEAN", "mask"): {"miou": noisy(0.6, pairs), "class_iou": noisy(0.08, pairs)}}
    for key, s in shape.items():
        s.update(ceiling_class_iou=noisy(0.8 if key[0] == "hair" else 0.15, pairs), pair=every)
    robustness = {(m, kind, level): noisy(30.0 - level * cost, pairs)
                  for m, costs in (("CA²-SIS", {"flips": 1.0, "blobs": 1.5}), ("SEAN", {"flips": 2.0, "blobs": 1.0}))
                  for kind, cost in costs.items() for level in (0.0, 1.0)}
    per_image = {m: {"psnr": noisy(25 - 10 * gap, pairs), "ssim": noisy(0.8 - gap, pairs),
                     "miou": noisy(0.7 - gap, pairs)} for m, gap in (("CA²-SIS", 0.0), ("SEAN", 0.1))}
    return Evidence(model="CA²-SIS", baseline="SEAN", per_image=per_image,
                    parser_ceiling=0.9, style=style, light=light, shape=shape, robustness=robustness,
                    robustness_miou={key: 0.5 for key in robustness}, class_share={"hair": 0.07, "mouth": 0.003})


def test_the_claims_table_judges_every_claim_and_says_where_it_does_not_hold():
    claims = judge_claims(_evidence(), resamples=1000, seed=0)
    assert list(claims) == [t.key for t in CLAIM_TESTS] == ["C6a", "C6b", "C1a", "C1b", "C4", "C5"]
    for key, c in claims.items():
        assert c["metric"] and "[" in c["statement"] and c["ci95"][0] <= c["difference"] <= c["ci95"][1], key
    c1a = claims["C1a"]  # pooled, hair's large gain outweighs the mouth going the other way
    assert c1a["verdict"] == "agrees" and c1a["exceptions"] == ["mouth"]
    assert c1a["statement"].startswith("Local style edits stay local for hair (7.0% of the image) but not for mouth "
                                       "(0.3% of the image), which goes the other way at 3.3 times the pooled "
                                       "difference: leakage")
    assert "over 70 edits of 60 pairs" in c1a["statement"]  # 60 hair and 10 mouth edits, resampled by pair
    c1b = claims["C1b"]  # a third lit like A where more than half is needed: the level fails, not "maybe"
    assert c1b["verdict"] == "level fails" and c1b["interval_verdict"] in ("agrees", "inconclusive")
    assert "the level fails" in c1b["statement"] and c1b["level"] == pooled_mean(_evidence().light, "CA²-SIS",
                                                                                  "lit_like_a")
    c4 = claims["C4"]  # the token swap wins on mIoU, but the moved nose reaches a third of its ceiling
    assert c4["verdict"] == "level fails" and c4["interval_verdict"] == "agrees" and c4["level"] < 0.5
    c5 = claims["C5"]  # robust against flips, not against blobs (a kind of noise, not a class: no share)
    assert c5["verdict"] == "agrees" and c5["exceptions"] == ["blobs"]
    assert c5["statement"].startswith("Robust to mask noise for flips but not for blobs, which goes the other way at "
                                      "2.0 times the pooled difference")
    assert claims["C6a"]["verdict"] == "agrees" and claims["C6a"]["level"] is None


def test_models_scored_on_different_pairs_are_refused():
    evidence = _evidence()
    evidence.style[("hair", "SEAN")]["pair"] = evidence.style[("hair", "SEAN")]["pair"][::-1].copy()
    with pytest.raises(ValueError, match="different pairs"):
        judge_claims(evidence, resamples=1000)
