"""Judging the paper's claims with their uncertainty: a pair bootstrap, a verdict, and the claims as data.

Notebook 02 compares two models (CA²-SIS and a SEAN-style baseline) on the same held-out pairs (A, B):
each pair gives one *difference*, model minus baseline, per measurement, and an edit gives one per
edited class of the pair. The rule, stated once here so that it can be tested:

* **agrees** — the 95 % bootstrap interval of the mean difference lies entirely on the side the
  claim predicts (above zero for "higher is better", below for "lower is better") *and*, for a
  claim with an absolute level, the level means what the claim says (e.g. more than half of the
  edits lit like A);
* **disagrees** — the interval lies entirely on the other side of zero;
* **level fails** — the claim's absolute level does not mean what the claim says: the claim fails
  on this data whatever the comparison of the two models shows (the interval's own verdict is
  kept beside it as ``interval_verdict``);
* **inconclusive** — the interval contains zero (and the level, where there is one, is met).

``bootstrap_ci`` resamples the held-out *pairs* with replacement (percentile interval, seeded, so a
rerun gives the same interval). Where a pair gives several values (one edit per edited class), a
resampled pair brings all of them (``clusters``): the edits of one pair share its two images and
its light, so they are not independent draws.

The claims notebook 02 tests are data: ``CLAIM_TESTS`` says what each one compares, in which
direction and which level it needs, and ``judge_claims`` runs them on the notebook's per-pair
measurements (``Evidence``), returning the ``claims`` mapping of metrics.json (docs/claims.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np

Verdict = Literal["agrees", "disagrees", "inconclusive", "level fails"]
VERDICTS: tuple[str, ...] = ("agrees", "disagrees", "inconclusive", "level fails")
INTERVAL_VERDICTS: tuple[str, ...] = ("agrees", "disagrees", "inconclusive")  # what an interval alone can say


# -- the rule ----------------------------------------------------------------------------------------
def bootstrap_ci(diff: Sequence[float] | np.ndarray, n: int = 2000, seed: int = 0, confidence: float = 0.95,
                 clusters: Sequence[int] | np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diff`` (NaNs dropped).

    ``clusters``: one pair id per value; a resample draws pairs and keeps all the values of each
    (the mean of a resample is the mean over its values). Without it every value is its own pair.
    """
    values = np.asarray(diff, dtype=float).ravel()
    keep = ~np.isnan(values)
    values = values[keep]
    if n < 100:
        raise ValueError(f"n={n} resamples is too few for a 95 % interval: use n >= 1000")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    if clusters is None:
        if values.size < 2:
            raise ValueError(f"a bootstrap interval needs at least 2 paired values, got {values.size}: use more pairs")
        idx = rng.integers(0, values.size, size=(n, values.size))  # (n, pairs): n resamples of the pairs
        means = values[idx].mean(axis=1)  # (n,)
    else:
        labels = np.asarray(clusters).ravel()
        if labels.size != keep.size:
            raise ValueError(f"clusters holds {labels.size} pair ids for {keep.size} values: give one id per value")
        _, pair = np.unique(labels[keep], return_inverse=True)  # (values,) -> 0 .. pairs - 1
        sums, counts = np.bincount(pair, weights=values), np.bincount(pair)  # (pairs,) each
        if sums.size < 2:
            raise ValueError(f"a bootstrap interval needs at least 2 pairs, got {sums.size}: use more pairs")
        idx = rng.integers(0, sums.size, size=(n, sums.size))  # (n, pairs): n resamples of the pairs
        means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)  # (n,): each resample's mean over its values
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def interval_verdict(ci: tuple[float, float], direction: int) -> str:
    """What the interval alone says: 'agrees', 'disagrees' or 'inconclusive' (it contains zero)."""
    lo, hi = ci
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 (higher is better) or -1 (lower is better), got {direction}")
    if not lo <= hi:
        raise ValueError(f"interval must be ordered (lo <= hi), got {ci}")
    if (lo > 0) if direction == 1 else (hi < 0):
        return "agrees"
    if (hi < 0) if direction == 1 else (lo > 0):
        return "disagrees"
    return "inconclusive"


def verdict(ci: tuple[float, float], direction: int, level_ok: bool | None = None) -> Verdict:
    """The rule above. ``direction`` +1: the claim predicts a positive difference, -1: negative.

    ``level_ok`` says whether the absolute level means what the claim means (``None``: the claim
    has no absolute level, only the comparison counts). An interval on the far side of zero is a
    disagreement whatever the level; otherwise a level that fails is the verdict.
    """
    said = interval_verdict(ci, direction)
    if said != "disagrees" and level_ok is False:
        return "level fails"
    return said  # type: ignore[return-value]


def judge(diff: Sequence[float] | np.ndarray, direction: int, level: float | None = None,
          level_ok: bool | None = None, n: int = 2000, seed: int = 0,
          clusters: Sequence[int] | np.ndarray | None = None) -> dict:
    """Interval, mean difference and verdict of one comparison, ready for metrics.json."""
    values = np.asarray(diff, dtype=float)
    ci = bootstrap_ci(values, n=n, seed=seed, clusters=clusters)
    valid = ~np.isnan(values)
    resampled = int(valid.sum()) if clusters is None else len(np.unique(np.asarray(clusters)[valid]))
    return {"difference": float(np.nanmean(values)), "ci95": [ci[0], ci[1]],
            "verdict": verdict(ci, direction, level_ok), "interval_verdict": interval_verdict(ci, direction),
            "level": None if level is None else float(level), "pairs": int(valid.sum()), "resampled": resampled}


def describe_interval(result: dict, digits: int = 3) -> str:
    """'+0.012 [+0.004, +0.020]': a difference and its 95 % interval, for verdict sentences."""
    lo, hi = result["ci95"]
    return f"{result['difference']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def bootstrap_errorbar(n: int = 2000, seed: int = 0) -> Callable[[np.ndarray], tuple[float, float]]:
    """seaborn's ``errorbar=`` for the notebook's figures: the same interval as the verdicts."""
    return partial(bootstrap_ci, n=n, seed=seed)


def pooled_mean(per_class: Mapping[tuple[str, str], Mapping[str, np.ndarray]], model: str, score: str) -> float:
    """The mean of ``score`` over every edit of ``model`` (all classes pooled, classes in name order):
    the level a claim reads, and the number a figure about the same edits must quote."""
    edits = [np.asarray(s[score], dtype=float) for (cls, m), s in sorted(per_class.items()) if m == model]
    return float(np.concatenate(edits).mean())


def decision_rule(resamples: int, seed: int) -> dict:
    """The rule's settings, for metrics.json."""
    return {"interval": "95 % percentile bootstrap over held-out pairs (the edits of a pair resampled together)",
            "resamples": resamples, "seed": seed, "verdicts": list(VERDICTS)}


# -- what notebook 02 measured ------------------------------------------------------------------------
Scores = Mapping[str, np.ndarray]  # score name -> one value per pair (or per edit), with "pair": its pair's id


@dataclass
class Evidence:
    """Notebook 02's per-pair measurements, as the claims read them (differences: model minus baseline)."""

    model: str  # "CA²-SIS"
    baseline: str  # "SEAN"
    per_image: Mapping[str, Scores]  # model -> "psnr", "ssim", "miou" of its reconstruction, one per pair
    parser_ceiling: float  # the toy parser's mIoU on the real images
    style: Mapping[tuple[str, str], Scores]  # (class, model) -> "leakage", "error_in_class", "unedited_error_in_class"
    light: Mapping[tuple[str, str], Scores]  # (class, model) -> "lit_like_a"
    shape: Mapping[tuple[str, str, str], Scores]  # (class, model, method) -> "miou", "class_iou", "ceiling_class_iou"
    robustness: Mapping[tuple[str, str, float], np.ndarray]  # (model, kind, level) -> PSNR per image
    robustness_miou: Mapping[tuple[str, str, float], float]  # (model, kind, level) -> parser mIoU, pixels pooled
    class_share: Mapping[str, float] = field(default_factory=dict)  # class -> its share of A's pixels

    def classes(self, table: Mapping[tuple, Scores]) -> list[str]:
        return sorted({key[0] for key in table})


Judged = Callable[..., dict]  # ``judge`` with the notebook's resamples and seed


def _pooled(per_class: Mapping[str, Scores], score: str) -> tuple[np.ndarray, np.ndarray]:
    """Every class's values of ``score`` in one array, and the pair each value comes from."""
    names = sorted(per_class)
    return (np.concatenate([np.asarray(per_class[c][score], dtype=float) for c in names]),
            np.concatenate([np.asarray(per_class[c]["pair"]) for c in names]))


def _paired(a: Scores, b: Scores, score: str) -> np.ndarray:
    if not np.array_equal(np.asarray(a["pair"]), np.asarray(b["pair"])):
        raise ValueError(f"the two models' {score} scores come from different pairs: score both on the same pairs")
    return np.asarray(a[score], dtype=float) - np.asarray(b[score], dtype=float)


@dataclass
class Breakdown:
    """One interval per class (or kind of noise): the sentence's list, and who goes the other way."""

    text: str
    other_way: list[str]
    results: dict[str, dict]


def _breakdown(diffs: Mapping[str, np.ndarray], direction: int, judged: Judged, digits: int = 4) -> Breakdown:
    parts, other_way, results = [], [], {}
    for name, diff in diffs.items():
        if np.sum(~np.isnan(diff)) < 2:
            continue
        r = results[name] = judged(diff, direction)
        astray = r["verdict"] == "disagrees"
        parts.append(f"{name} {describe_interval(r, digits)}" + (" — the other way" if astray else ""))
        other_way += [name] if astray else []
    return Breakdown("; ".join(parts), other_way, results)


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _scope(pooled: dict, groups: Breakdown, share: Mapping[str, float] | None = None) -> str:
    """Where the claim holds: 'for every class tested', or for which classes it holds and which go the
    other way (with their share of the image, and how far beyond the pooled difference they go)."""
    if not groups.other_way:
        return f"for every {'class' if share else 'kind'} tested"
    holding = [name for name, r in groups.results.items() if r["verdict"] == "agrees"]
    held = f"for {_names(holding)}" if holding else "for no single class"
    if share and holding:
        held += f" ({_names([f'{share[n]:.1%}' for n in holding])} of the image)"
    astray = []
    for name in groups.other_way:
        ratio = abs(groups.results[name]["difference"] / pooled["difference"]) if pooled["difference"] else 0.0
        beyond = f" at {ratio:.1f} times the pooled difference" if pooled["interval_verdict"] == "agrees" else ""
        astray.append(name + (f" ({share[name]:.1%} of the image)" if share else "") + ", which goes the other way"
                      + beyond)
    return f"{held} but not for {'; '.join(astray)}"


_INTERVAL_WORDS = {"agrees": "goes the claimed way", "disagrees": "goes the other way",
                   "inconclusive": "is inconclusive (its interval contains zero)"}


def _level_clause(result: dict, what: str) -> str:
    return f"the level fails: {what}" if result["verdict"] == "level fails" else f"the level is met: {what}"


# -- the claims, one function each ----------------------------------------------------------------------
@dataclass(frozen=True)
class ClaimTest:
    """One claim of docs/claims.md as notebook 02 tests it."""

    key: str  # the claim's ID, with a letter per measurement (C1a, C1b)
    metric: str  # what the difference is of, with its direction, and what the level is
    direction: int  # +1: the claim predicts model > baseline; -1: model < baseline
    level_needed: float | None  # the level must exceed this for the claim to mean what it says (None: no level)
    run: Callable[[Evidence, ClaimTest, Judged], tuple[dict, str, list[str]]]  # -> result, sentence, exceptions

    def level_ok(self, level: float) -> bool | None:
        return None if self.level_needed is None else level > self.level_needed


def _c6a(ev: Evidence, test: ClaimTest, judged: Judged) -> tuple[dict, str, list[str]]:
    a, b = ev.per_image[ev.model], ev.per_image[ev.baseline]
    r, p = judged(a["ssim"] - b["ssim"], test.direction), judged(a["psnr"] - b["psnr"], test.direction)
    return r, (f"Reconstruction better than a SPADE-family model: SSIM {np.mean(a['ssim']):.3f} vs "
               f"{np.mean(b['ssim']):.3f} ({ev.baseline}), difference {describe_interval(r)}; PSNR "
               f"difference {describe_interval(p, 2)} dB ({p['verdict']} on its own)."), []


def _c6b(ev: Evidence, test: ClaimTest, judged: Judged) -> tuple[dict, str, list[str]]:
    a, b = ev.per_image[ev.model]["miou"], ev.per_image[ev.baseline]["miou"]
    r = judged(a - b, test.direction)
    return r, (f"Layout fidelity better than a SPADE-family model (the mask enters once, not at every layer): "
               f"parser mIoU per image {np.mean(a):.3f} vs {np.mean(b):.3f} ({ev.baseline}), difference "
               f"{describe_interval(r)}; the parser scores {ev.parser_ceiling:.3f} on the real images."), []


def _c1a(ev: Evidence, test: ClaimTest, judged: Judged) -> tuple[dict, str, list[str]]:
    classes = ev.classes(ev.style)
    mine, theirs = ({c: ev.style[c, m] for c in classes} for m in (ev.model, ev.baseline))
    leak = {c: _paired(mine[c], theirs[c], "leakage") for c in classes}
    err = {c: _paired(mine[c], theirs[c], "error_in_class") for c in classes}
    pair = _pooled(mine, "leakage")[1]
    beats_nothing = np.concatenate([np.asarray(mine[c]["error_in_class"])
                                    < np.asarray(mine[c]["unedited_error_in_class"]) for c in classes])
    level = float(beats_nothing.mean())
    r = judged(np.concatenate(list(leak.values())), test.direction, level=level, level_ok=test.level_ok(level),
               clusters=pair)
    e = judged(np.concatenate(list(err.values())), test.direction, clusters=pair)
    by_leak, by_err = _breakdown(leak, test.direction, judged), _breakdown(err, test.direction, judged)
    statement = (f"Local style edits stay local {_scope(r, by_leak, ev.class_share)}: leakage outside the edited "
                 f"class, {ev.model} minus {ev.baseline}, {describe_interval(r, 4)} over {r['pairs']} edits of "
                 f"{r['resampled']} pairs; per class: {by_leak.text}. Inside the class, the error to the ideal edit "
                 f"{_INTERVAL_WORDS[e['interval_verdict']]}: {describe_interval(e, 4)} ({by_err.text}). "
                 f"{ev.model}'s edit is closer to the ideal than doing nothing in {level:.0%} of the edits.")
    return r, statement, by_leak.other_way


def _c1b(ev: Evidence, test: ClaimTest, judged: Judged) -> tuple[dict, str, list[str]]:
    classes = ev.classes(ev.light)
    lit = {c: _paired(ev.light[c, ev.model], ev.light[c, ev.baseline], "lit_like_a") for c in classes}
    level, level_baseline = (pooled_mean(ev.light, m, "lit_like_a") for m in (ev.model, ev.baseline))
    pair = _pooled({c: ev.light[c, ev.model] for c in classes}, "lit_like_a")[1]
    r = judged(np.concatenate(list(lit.values())), test.direction, level=level, level_ok=test.level_ok(level),
               clusters=pair)
    by_class = _breakdown(lit, test.direction, judged, 3)
    what = (f"{ev.model}'s edits are closer to the render under A's light in {level:.0%} of {r['pairs']} edits "
            f"where the claim needs more than {test.level_needed:.0%} ({ev.baseline}'s: {level_baseline:.0%})")
    return r, (f"Edited classes stay consistent with the image's global light — {_level_clause(r, what)}. The "
               f"difference between the models {_INTERVAL_WORDS[r['interval_verdict']]}: {describe_interval(r)} "
               f"over {r['resampled']} pairs; per class: {by_class.text}."), by_class.other_way


def _c4(ev: Evidence, test: ClaimTest, judged: Judged) -> tuple[dict, str, list[str]]:
    classes = ev.classes(ev.shape)
    tok = {c: ev.shape[c, ev.model, "tokens"] for c in classes}
    composed = {c: ev.shape[c, ev.baseline, "mask"] for c in classes}
    miou = {c: _paired(tok[c], composed[c], "miou") for c in classes}
    moved = {c: _paired(tok[c], composed[c], "class_iou") for c in classes}
    share = {c: float(np.nanmean(tok[c]["class_iou"]) / np.nanmean(tok[c]["ceiling_class_iou"])) for c in classes}
    level = min(share.values())  # every moved part must land, not their average (hair must not hide the nose)
    r = judged(np.concatenate(list(miou.values())), test.direction, level=level, level_ok=test.level_ok(level),
               clusters=_pooled(tok, "miou")[1])
    by_class = _breakdown(miou, test.direction, judged, 3)
    moved_text = "; ".join(f"{c} {np.nanmean(tok[c]['class_iou']):.3f} vs {np.nanmean(composed[c]['class_iou']):.3f} "
                           f"(parser ceiling {np.nanmean(tok[c]['ceiling_class_iou']):.3f})" for c in classes)
    what = ("the token swap's moved part reaches " + ", ".join(f"{c} {v:.0%}" for c, v in share.items())
            + f" of the parser's ceiling, where the claim needs more than {test.level_needed:.0%} for every moved "
            "class")
    return r, (f"Shape editing without a mask — {_level_clause(r, what)}. The token swap's parser mIoU against the "
               f"ideal layout, minus {ev.baseline}'s with a composed mask, {_INTERVAL_WORDS[r['interval_verdict']]}: "
               f"{describe_interval(r)} over {r['resampled']} pairs; per class: {by_class.text}. The moved class's "
               f"own IoU (token swap vs {ev.baseline}): {moved_text}; differences "
               f"{_breakdown(moved, test.direction, judged, 3).text}."), by_class.other_way


def _c5(ev: Evidence, test: ClaimTest, judged: Judged) -> tuple[dict, str, list[str]]:
    kinds = list(dict.fromkeys(kind for _, kind, _ in ev.robustness))
    clean = {kind: min(level for _, k, level in ev.robustness if k == kind) for kind in kinds}
    worst = {kind: max(level for _, k, level in ev.robustness if k == kind) for kind in kinds}
    drop = {m: {k: ev.robustness[m, k, clean[k]] - ev.robustness[m, k, worst[k]] for k in kinds}
            for m in (ev.model, ev.baseline)}
    miou_lost = {m: float(np.mean([ev.robustness_miou[m, k, clean[k]] - ev.robustness_miou[m, k, worst[k]]
                                   for k in kinds])) for m in drop}
    per_kind = {k: drop[ev.model][k] - drop[ev.baseline][k] for k in kinds}
    r = judged(np.mean(list(per_kind.values()), axis=0), test.direction)
    by_kind = _breakdown(per_kind, test.direction, judged, 2)
    lost = {m: np.mean([drop[m][k].mean() for k in kinds]) for m in drop}
    return r, (f"Robust to mask noise {_scope(r, by_kind)}: PSNR lost at the strongest corruption, {ev.model} minus "
               f"{ev.baseline}, {describe_interval(r, 2)} dB (mean over the {len(kinds)} kinds; {ev.model} loses "
               f"{lost[ev.model]:.2f} dB, {ev.baseline} {lost[ev.baseline]:.2f} dB); per kind: {by_kind.text}. "
               f"Parser mIoU lost there (means): {miou_lost[ev.model]:.3f} ({ev.model}) vs "
               f"{miou_lost[ev.baseline]:.3f} ({ev.baseline})."), by_kind.other_way


CLAIM_TESTS: tuple[ClaimTest, ...] = (
    ClaimTest("C6a", "SSIM per held-out image, CA²-SIS minus SEAN", +1, None, _c6a),
    ClaimTest("C6b", "toy parser's mIoU against the input mask, per held-out image, CA²-SIS minus SEAN", +1, None,
              _c6b),
    ClaimTest("C1a", "leakage: mean |change| outside the edited class vs the model's own reconstruction (pixel values "
                     "in [0, 1]), per edit (pair × class), CA²-SIS minus SEAN; level: fraction of edits closer to the "
                     "ideal than the unedited image", -1, 0.5, _c1a),
    ClaimTest("C1b", "fraction of edits closer to the render under A's light than under B's (1 per edit, 0 otherwise), "
                     "CA²-SIS minus SEAN; level: CA²-SIS's fraction", +1, 0.5, _c1b),
    ClaimTest("C4", "toy parser's mIoU against the ideal layout per pair, CA²-SIS token swap minus SEAN with a "
                    "composed mask; level: the lowest, over the moved classes, of the token swap's moved-class IoU "
                    "as a share of the parser's IoU on the ideal render", +1, 0.5, _c4),
    ClaimTest("C5", "PSNR (dB) of the reconstruction from the clean mask minus from the most corrupted one, per image, "
                    "CA²-SIS minus SEAN, mean over label flips, boundary jitter and spurious blobs", -1, None, _c5),
)


def judge_claims(evidence: Evidence, resamples: int = 2000, seed: int = 0,
                 tests: Sequence[ClaimTest] = CLAIM_TESTS) -> dict[str, dict]:
    """Claim ID -> verdict entry (the ``claims`` schema of docs/claims.md), every test by the rule above."""
    judged = partial(judge, n=resamples, seed=seed)
    claims = {}
    for test in tests:
        result, statement, exceptions = test.run(evidence, test, judged)
        claims[test.key] = {"verdict": result["verdict"], "interval_verdict": result["interval_verdict"],
                            "difference": result["difference"], "ci95": result["ci95"], "level": result["level"],
                            "level_needed": test.level_needed, "exceptions": exceptions, "statement": statement,
                            "metric": test.metric}
    return claims


__all__ = [
    "CLAIM_TESTS", "INTERVAL_VERDICTS", "VERDICTS", "ClaimTest", "Evidence", "Verdict", "bootstrap_ci",
    "bootstrap_errorbar", "decision_rule", "describe_interval", "interval_verdict", "judge", "judge_claims",
    "pooled_mean", "verdict",
]
