"""Notebook 04 (attention inspection): IoU of the attention argmax, and AUROC by ranks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import _reference as ref
from ._harness import (
    Case,
    Mismatch,
    as_tensor,
    call_student,
    check_shape,
    check_values,
    close,
    describe_inputs,
    lazy,
    run_check,
    same_number,
    scalar,
)


def _mask(batch: int, classes: int, h: int, w: int, absent: int | None = None, offset: int = 0) -> Tensor:
    """A one-hot mask of 4×4 blocks of random classes; ``offset`` shifts the blocks so that the class
    boundaries fall at odd pixels (where resizing by 2 with another mode than nearest blends classes)."""
    labels = torch.randint(0, classes, (batch, h // 4 + 1, w // 4 + 1)).repeat_interleave(4, 1).repeat_interleave(4, 2)
    labels = labels[:, offset:offset + h, offset:offset + w]
    if absent is not None:
        labels[labels == absent] = (absent + 1) % classes
    return F.one_hot(labels, classes).permute(0, 3, 1, 2).float()


def _logits_near(mask: Tensor, heads: int, size: tuple[int, int]) -> Tensor:
    """Noisy logits that mostly agree with the mask, different per head."""
    target = F.interpolate(mask, size=size, mode="nearest")  # (B, K, h, w)
    return 2 * target[:, None] + 1.5 * torch.randn(mask.shape[0], heads, *target.shape[1:])


def _iou_of(chosen: Tensor, truth: Tensor, classes: int, nan_if: str = "absent") -> Tensor:
    """IoU per class of two label maps, pooled over all their pixels; NaN where the class is absent
    from ``truth`` (``nan_if="absent"``) or where the union is empty (``nan_if="empty union"``)."""
    scores = []
    for c in range(classes):
        pred, true = chosen == c, truth == c
        union = int((pred | true).sum())
        undefined = not bool(true.any()) if nan_if == "absent" else union == 0
        scores.append(float("nan") if undefined else int((pred & true).sum()) / union)
    return torch.tensor(scores, dtype=torch.float64)


RESIZE_MODES = {  # a wrong resize mode a student may use -> interpolate's arguments
    'mode="bilinear"': dict(mode="bilinear"),
    'mode="bilinear", align_corners=True': dict(mode="bilinear", align_corners=True),
    'mode="bicubic"': dict(mode="bicubic"),
    'mode="area"': dict(mode="area"),
    'mode="nearest-exact"': dict(mode="nearest-exact"),
}
PER_IMAGE_HINT = ("You averaged one IoU per image; the IoU is pooled over the batch: count each class's "
                  "intersection and union over all the images together, then divide once.")


def _resize_hint(modes: list[str]) -> str:
    """The hint for a mask resized with one of ``modes`` (wrong modes that give the same IoUs on this case)."""
    named = modes[0] if len(modes) == 1 else f"{', '.join(modes[:-1])} or {modes[-1]} (the same IoUs here)"
    blend = ("it blends neighbouring classes where they meet" if any("nearest" not in m for m in modes)
             else 'it samples other source pixels than mode="nearest"')
    return (f"Your IoUs are those of a mask resized with {named}: {blend}. Resize the mask with "
            'nearest-neighbour interpolation (mode="nearest"), exactly as L_att does.')


def _iou_variants(logits: Tensor, mask: Tensor) -> list[tuple[str, Tensor]]:
    """(hint, IoUs) of typical mistakes, in the order their hints are preferred."""
    classes, size = mask.shape[1], logits.shape[-2:]
    chosen = logits.mean(1).argmax(1)  # (B, h, w)
    truth = F.interpolate(mask, size=size, mode="nearest").argmax(1)
    per_image = torch.stack([_iou_of(chosen[b], truth[b], classes) for b in range(mask.shape[0])])  # (B, K)
    per_image_union = torch.stack([_iou_of(chosen[b], truth[b], classes, "empty union")
                                   for b in range(mask.shape[0])])
    variants = [
        ("You scored a single head; the maps L_att supervises are the mean over the heads.",
         ref.argmax_iou(logits[:, :1], mask)),
        ("A class that is absent from the mask has no IoU at all (0/0): return NaN for it, not 0, or the mean over "
         "classes is dragged down by classes that are not there.",
         torch.nan_to_num(ref.argmax_iou(logits, mask), nan=0.0)),
        (PER_IMAGE_HINT, per_image.nanmean(0)),
        (PER_IMAGE_HINT, per_image.mean(0)),
        (PER_IMAGE_HINT, per_image_union.nanmean(0)),
    ]
    by_value: list[tuple[list[str], Tensor]] = []  # wrong resize modes grouped by the IoUs they give
    for mode, kwargs in RESIZE_MODES.items():
        value = _iou_of(chosen, F.interpolate(mask, size=size, **kwargs).argmax(1), classes)
        group = next((modes for modes, other in by_value if close(value, other)), None)
        if group is None:
            by_value.append(([mode], value))
        else:
            group.append(mode)
    return variants + [(_resize_hint(modes), value) for modes, value in by_value]


def _iou_case(mask: Tensor, heads: int, size: tuple[int, int]) -> Callable:
    logits = _logits_near(mask, heads, size)
    expected = ref.argmax_iou(logits, mask)

    def run(student: Callable) -> None:
        answer = call_student(student, logits.clone(), mask.clone(), names=("logits", "mask"),
                              received=describe_inputs(logits=logits, mask=mask),
                              advice="use torch operations on them, or convert them with .numpy() first")
        got = as_tensor(answer, "the IoU per class").double()
        check_shape(got, expected.shape, "the IoU per class", ("K classes",))
        if close(got, expected):
            return
        if bool(((got < 0) | (got > 1)).any()):
            raise Mismatch("an IoU lies outside [0, 1]: intersection over union can never exceed 1")
        hints = [hint for hint, value in _iou_variants(logits, mask)
                 if close(got, value) and not close(value, expected)]
        check_values(got, expected, "the IoU per class", hints=hints[:1])

    return run


def check_argmax_iou(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``argmax_iou(logits (B, heads, K, h, w), mask (B, K, H, W)) -> (K,)`` with NaN for absent classes (medium)."""
    def cases() -> list[Case]:
        return [Case("a 2×6-class mask, 4 heads at 16×16", lazy(_iou_case, _mask(2, 6, 32, 32), 4, (16, 16))),
                Case("batch 1 with class 2 absent", lazy(_iou_case, _mask(1, 5, 32, 32, absent=2), 2, (16, 16))),
                Case("a non-square 8×16 layer (mask 32×64)", lazy(_iou_case, _mask(2, 4, 32, 64), 2, (8, 16))),
                Case("a mask whose class boundaries fall at odd pixels, 16×16 layer (mask 32×32)",
                     lazy(_iou_case, _mask(2, 5, 32, 32, offset=1), 2, (16, 16)))]
    return run_check("argmax_iou", student, cases, strict, quiet)


def _auroc_case(scores: np.ndarray, target: np.ndarray) -> Callable:
    expected = ref.auroc(scores, target)
    ordinal = np.empty(len(scores))
    ordinal[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    n_pos, n_neg = int(target.sum()), int((~target).sum())
    no_ties = (ordinal[target].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1)

    def run(student: Callable) -> None:
        answer = call_student(student, scores.copy(), target.copy(), names=("scores", "target"),
                              received=describe_inputs(scores=scores, target=target),
                              advice="use NumPy operations on them, or convert them to tensors first")
        got = scalar(answer, "the AUROC")
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
