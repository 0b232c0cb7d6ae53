"""Notebook 04 (attention inspection): IoU of the attention argmax, and AUROC by ranks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import _reference as ref
from ._harness import Case, Mismatch, as_tensor, check_shape, check_values, close, lazy, run_check, same_number, scalar


def _mask(batch: int, classes: int, h: int, w: int, absent: int | None = None) -> Tensor:
    labels = torch.randint(0, classes, (batch, h // 4, w // 4)).repeat_interleave(4, 1).repeat_interleave(4, 2)
    if absent is not None:
        labels[labels == absent] = (absent + 1) % classes
    return F.one_hot(labels, classes).permute(0, 3, 1, 2).float()


def _logits_near(mask: Tensor, heads: int, size: tuple[int, int]) -> Tensor:
    """Noisy logits that mostly agree with the mask, different per head."""
    target = F.interpolate(mask, size=size, mode="nearest")  # (B, K, h, w)
    return 2 * target[:, None] + 1.5 * torch.randn(mask.shape[0], heads, *target.shape[1:])


def _iou_variants(logits: Tensor, mask: Tensor) -> dict[str, Tensor]:
    first_head = ref.argmax_iou(logits[:, :1], mask)
    bilinear = F.interpolate(mask, size=logits.shape[-2:], mode="bilinear")
    chosen, truth = logits.mean(1).argmax(1), bilinear.argmax(1)
    return {
        "first_head": first_head,
        "zero_for_absent": torch.nan_to_num(ref.argmax_iou(logits, mask), nan=0.0),
        "bilinear": torch.tensor([float(((chosen == c) & (truth == c)).sum() / ((chosen == c) | (truth == c)).sum())
                                  if bool((truth == c).any()) else float("nan") for c in range(mask.shape[1])],
                                 dtype=torch.float64),
    }


IOU_HINTS = {
    "first_head": "You scored a single head; the maps L_att supervises are the mean over the heads.",
    "zero_for_absent": "A class that is absent from the mask has no IoU at all (0/0): return NaN for it, not 0, or "
                       "the mean over classes is dragged down by classes that are not there.",
    "bilinear": "Resize the mask with nearest-neighbour interpolation, exactly as L_att does.",
}


def _iou_case(mask: Tensor, heads: int, size: tuple[int, int]) -> Callable:
    logits = _logits_near(mask, heads, size)
    expected = ref.argmax_iou(logits, mask)
    variants = _iou_variants(logits, mask)

    def run(student: Callable) -> None:
        got = as_tensor(student(logits.clone(), mask.clone()), "the IoU per class").double()
        check_shape(got, expected.shape, "the IoU per class", ("K classes",))
        if close(got, expected):
            return
        if bool(((got < 0) | (got > 1)).any()):
            raise Mismatch("an IoU lies outside [0, 1]: intersection over union can never exceed 1")
        hints = [IOU_HINTS[name] for name, value in variants.items()
                 if close(got, value) and not close(value, expected)]
        check_values(got, expected, "the IoU per class", hints=hints[:1])

    return run


def check_argmax_iou(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``argmax_iou(logits (B, heads, K, h, w), mask (B, K, H, W)) -> (K,)`` with NaN for absent classes (medium)."""
    def cases() -> list[Case]:
        return [Case("a 2×6-class mask, 4 heads at 16×16", lazy(_iou_case, _mask(2, 6, 32, 32), 4, (16, 16))),
                Case("batch 1 with class 2 absent", lazy(_iou_case, _mask(1, 5, 32, 32, absent=2), 2, (16, 16))),
                Case("a non-square 8×16 layer (mask 32×64)", lazy(_iou_case, _mask(2, 4, 32, 64), 2, (8, 16)))]
    return run_check("argmax_iou", student, cases, strict, quiet)


def _auroc_case(scores: np.ndarray, target: np.ndarray) -> Callable:
    expected = ref.auroc(scores, target)
    ordinal = np.empty(len(scores))
    ordinal[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    n_pos, n_neg = int(target.sum()), int((~target).sum())
    no_ties = (ordinal[target].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1)

    def run(student: Callable) -> None:
        got = scalar(student(scores.copy(), target.copy()), "the AUROC")
        if same_number(got, expected, 1e-6):
            return
        if np.isnan(expected):
            raise Mismatch(f"you returned {got}; with no positive (or no negative) pixel the AUROC is undefined: "
                           "return NaN")
        if same_number(got, 1 - expected, 1e-6):
            raise Mismatch(f"your AUROC is {got:.4f}: it ranks the negatives above the positives — whose ranks "
                           "should you add up?")
        if same_number(got, no_ties, 1e-6):
            raise Mismatch(f"your AUROC is {got:.4f}: right without ties, but tied scores must share the average "
                           "of their ranks (a tie counts as half a win)")
        raise Mismatch(f"your AUROC is {got:.4f}; the library's differs by {abs(got - expected):.3g}")

    return run


def check_auroc(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``auroc(scores, target) -> float`` by the Mann–Whitney rank sum, ties averaged (hard)."""
    def cases() -> list[Case]:
        rng = np.random.default_rng(0)
        target = rng.random(400) < 0.3
        continuous = rng.normal(size=400) + target
        tied = np.round(continuous * 2) / 2  # many equal scores
        perfect = np.where(target, 1.0, 0.0) + rng.random(400) * 0.5
        return [Case("400 continuous scores", lazy(_auroc_case, continuous, target)),
                Case("scores with many ties", lazy(_auroc_case, tied, target)),
                Case("perfectly separated scores", lazy(_auroc_case, perfect, target)),
                Case("no positive pixel", lazy(_auroc_case, continuous, np.zeros(400, dtype=bool)))]
    return run_check("auroc", student, cases, strict, quiet)
