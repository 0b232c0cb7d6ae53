"""Notebook 03 (training): the attention loss L_att, then its class-balanced variant."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _reference as ref
from ._harness import Case, Mismatch, call_student, lazy, run_check, same_number, scalar


def _one_hot(batch: int, classes: int, h: int, w: int, absent: int | None = None, tiny: int | None = None) -> Tensor:
    """Random blocks of 3×3 pixels (cut to h×w); class ``absent`` nowhere; class ``tiny`` on 2 pixels per image."""
    labels = torch.randint(0, classes, (batch, h // 3 + 1, w // 3 + 1))
    labels = labels.repeat_interleave(3, 1).repeat_interleave(3, 2)[:, :h, :w]
    for c in (absent, tiny):
        if c is not None:
            labels[labels == c] = (c + 1) % classes
    if tiny is not None:
        labels[:, 2, 2:4] = tiny
    return F.one_hot(labels, classes).permute(0, 3, 1, 2).float()  # (B, K, H, W)


def _logits(mask: Tensor, sizes: list[tuple[int, int]], heads: int, zero: bool = False) -> list[Tensor]:
    b, k = mask.shape[:2]
    return [torch.zeros(b, heads, k, h, w) if zero else torch.randn(b, heads, k, h, w) * 2 for h, w in sizes]


def _bce(logits: Tensor, target: Tensor, pos_weight: Tensor | None = None) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)


def _plain_mistakes(layers: list[Tensor], mask: Tensor) -> dict[str, float]:
    """What typical wrong versions of L_att give on these inputs."""
    def per_layer(fn: Callable[[Tensor, Tensor], Tensor], mode: str = "nearest") -> float:
        values = [fn(lg, F.interpolate(mask, size=lg.shape[-2:], mode=mode)) for lg in layers]
        return float(torch.stack(values).mean())

    return {
        "heads": per_layer(lambda lg, t: _bce(lg, t[:, None].expand_as(lg))),
        "softmax": per_layer(lambda lg, t: F.cross_entropy(lg.mean(1), t.argmax(1))),
        "bilinear": per_layer(lambda lg, t: _bce(lg.mean(1), t), mode="bilinear"),
        "sum": per_layer(lambda lg, t: F.binary_cross_entropy_with_logits(lg.mean(1), t, reduction="none")
                         .sum(1).mean()),
    }


HINTS = {
    "heads": "L_att supervises the heads' *average* logits, not every head on its own: average first.",
    "softmax": "L_att is a binary cross-entropy per class (is this pixel of class k, yes or no?), not a softmax over "
               "the classes.",
    "bilinear": "The mask must be resized the way every label map is resized in this model: which mode keeps it 0/1?",
    "sum": "Your loss grows with the number of classes: take the mean over the classes, not the sum.",
}


def _loss_case(layers: list[Tensor], mask: Tensor, pos_weight_max: float | None) -> Callable:
    expected = float(ref.attention_loss(layers, mask, pos_weight_max or 0.0))
    mistakes = _plain_mistakes(layers, mask)
    mistakes.update(_balanced_mistakes(layers, mask, pos_weight_max) if pos_weight_max else {})

    def run(student: Callable) -> None:
        args = (layers, mask.clone()) + ((pos_weight_max,) if pos_weight_max is not None else ())
        names = ("layer_logits", "mask", "pos_weight_max")[:len(args)]
        got = scalar(call_student(student, *args, names=names), "L_att")
        if same_number(got, expected):
            return
        for name, value in mistakes.items():
            if same_number(got, value) and not same_number(value, expected):
                raise Mismatch(f"your loss is {got:.4f}. {HINTS[name]}")
        if all(bool((lg == 0).all()) for lg in layers) and pos_weight_max is None:
            raise Mismatch(f"your loss is {got:.4f}, but with every logit 0 the loss is the same whatever the mask. "
                           "Which number is that (see the question below)?")
        raise Mismatch(f"your loss is {got:.4f}; the library's differs by {abs(got - expected):.3g}")

    return run


def check_attention_loss(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``attention_loss(layer_logits, mask) -> scalar``: L_att without class balancing (medium)."""
    def cases() -> list[Case]:
        mask = _one_hot(2, 5, 32, 32)
        return [
            Case("all logits 0", lazy(_loss_case, _logits(mask, [(8, 8), (16, 16)], 2, zero=True), mask, None)),
            Case("one layer at 8×8, 2 heads", lazy(_loss_case, _logits(mask, [(8, 8)], 2), mask, None)),
            Case("three layers 8², 16², 32², 4 heads", lazy(_loss_case, _logits(mask, [(8, 8), (16, 16), (32, 32)], 4),
                                                                  mask, None)),
            Case("batch 1 with class 3 absent", lazy(_loss_case, _logits(m := _one_hot(1, 5, 32, 32, absent=3),
                                                                   [(16, 16)], 2), m, None)),
            Case("non-square layers 8×16 and 16×32 (mask 32×64)",
                 lazy(_loss_case, _logits(m2 := _one_hot(2, 4, 32, 64), [(8, 16), (16, 32)], 2), m2, None)),
        ]
    return run_check("attention_loss", student, cases, strict, quiet)


def _balanced_mistakes(layers: list[Tensor], mask: Tensor, cap: float) -> dict[str, float]:
    def loss(weight_fn: Callable[[Tensor], Tensor]) -> float:
        values = []
        for lg in layers:
            target = F.interpolate(mask, size=lg.shape[-2:], mode="nearest")
            values.append(_bce(lg.mean(1), target, weight_fn(target)))
        return float(torch.stack(values).mean())

    def ratio(target: Tensor) -> Tensor:
        pos = target.sum(dim=(0, 2, 3))
        return (target[:, 0].numel() - pos) / pos.clamp_min(1)

    return {
        "unclamped": loss(lambda t: ratio(t)[:, None, None]),
        "inverted": loss(lambda t: (1 / ratio(t).clamp_min(1e-6)).clamp(1.0, cap)[:, None, None]),
        "per_sample": loss(lambda t: ((t[:, 0].numel() / t.shape[0] - t.sum(dim=(2, 3)))
                                      / t.sum(dim=(2, 3)).clamp_min(1)).clamp(1.0, cap)[:, :, None, None]),
    }


HINTS.update({
    "unclamped": "The weight of a class must stay within [1, pos_weight_max]: a 1-pixel class would otherwise get a "
                 "weight of thousands.",
    "inverted": "Your weight shrinks the positives of rare classes; it should raise them (negatives over positives).",
    "per_sample": "The counts of positives and negatives are taken over the whole batch, one weight per class — "
                  "not one per image.",
})


def check_balanced_attention_loss(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``balanced_attention_loss(layer_logits, mask, pos_weight_max) -> scalar`` (hard)."""
    def cases() -> list[Case]:
        mask = _one_hot(2, 5, 32, 32)
        small = _one_hot(2, 6, 32, 32, tiny=5)  # class 5: two pixels per image, so its weight hits the cap
        return [
            Case("pos_weight_max = 200", lazy(_loss_case, _logits(mask, [(8, 8), (16, 16)], 2), mask, 200.0)),
            Case("pos_weight_max = 1 (no balancing)", lazy(_loss_case, _logits(mask, [(16, 16)], 2), mask, 1.0)),
            Case("a 2-pixel class and pos_weight_max = 50",
                 lazy(_loss_case, _logits(small, [(32, 32)], 2), small, 50.0)),
            Case("batch 1 with class 3 absent", lazy(_loss_case, _logits(m := _one_hot(1, 5, 32, 32, absent=3),
                                                                   [(16, 16)], 2), m, 200.0)),
            Case("non-square layers 8×16 and 16×32", lazy(_loss_case, _logits(m2 := _one_hot(2, 4, 32, 64),
                                                                        [(8, 16), (16, 32)], 2), m2, 200.0)),
        ]
    return run_check("balanced_attention_loss", student, cases, strict, quiet)

