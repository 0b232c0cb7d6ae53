"""Notebook 00 (anatomy): the shape of every tensor, and the mask embedder by hand."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import _reference as ref
from ._harness import Case, Mismatch, as_tensor, call_student, check_shape, check_values, close, lazy, run_check

SHAPE_KEYS = ("one_hot", "styles", "tokens", "logits", "image")
SHAPE_DIMS = {"one_hot": ("B", "K", "H", "W"), "styles": ("B", "K", "code"), "tokens": ("B", "K'", "L"),
              "logits": ("B", "heads", "K", "h", "w"), "image": ("B", "3", "H", "W")}


def _as_shape(value, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise Mismatch(f"{what} should be a tuple of ints, got {value!r}") from None


def _compare_shape(got, expected: tuple[int, ...], what: str, dims: tuple[str, ...]) -> None:
    check_shape(torch.empty(_as_shape(got, what)), expected, what, dims)


def _shapes_case(config: ref.CA2SISConfig, batch: int) -> Callable:
    expected = ref.model_shapes(config, batch)

    def run(student: Callable) -> None:
        got = call_student(student, config, batch, names=("config", "batch"))
        if not isinstance(got, dict):
            raise Mismatch(f"return a dict with the keys {SHAPE_KEYS}, got {type(got).__name__}")
        missing = [k for k in SHAPE_KEYS if k not in got]
        if missing:
            raise Mismatch(f"the dict lacks the keys {missing}")
        for key in ("one_hot", "styles", "tokens", "image"):
            _compare_shape(got[key], expected[key], f"'{key}'", SHAPE_DIMS[key])
        layers = list(got["logits"])
        if len(layers) != len(expected["logits"]):
            raise Mismatch(f"'logits' lists {len(layers)} layers; how many cross-attention layers (stages) does "
                           "config.stages describe?")
        for i, (g, e) in enumerate(zip(layers, expected["logits"])):
            _compare_shape(g, e, f"'logits'[{i}] (stage {i + 1})", SHAPE_DIMS["logits"])

    return run


def check_tensor_shapes(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``tensor_shapes(config, batch) -> dict`` of the shapes one forward pass produces (easy)."""
    def cases() -> list[Case]:
        return [
            Case("the tiny preset, batch 2", lazy(_shapes_case, ref.CA2SISConfig.tiny(), 2)),
            Case("the tiny preset at 128² with 19 classes, batch 1",
                 lazy(_shapes_case, ref.CA2SISConfig.tiny(image_size=128, num_classes=19), 1)),
            Case("a tiny variant with 5 classes and the background kept (exclude_background=False), batch 3",
                 lazy(_shapes_case, ref.CA2SISConfig.tiny(num_classes=5, exclude_background=False), 3)),
        ]
    return run_check("tensor_shapes", student, cases, strict, quiet)


def _embed_case(mask: torch.Tensor, resolution: int, exclude_background: bool, tokens: int) -> Callable:
    embedder = ref.MaskEmbedder(resolution, tokens, exclude_background)
    expected = embedder(mask)
    linear = nn.Linear(resolution**2, tokens**2)
    linear.load_state_dict(embedder.linear.state_dict())

    def run(student: Callable) -> None:
        answer = call_student(student, mask.clone(), linear, resolution, exclude_background,
                              names=("one_hot", "linear", "embed_resolution", "exclude_background"))
        got = as_tensor(answer, "the tokens")
        check_shape(got, expected.shape, "the tokens", ("B", "K'", "L"))
        if close(got, expected):
            return
        hints = []
        start = int(exclude_background)
        resized = F.interpolate(mask[:, start:], size=(resolution, resolution), mode="bilinear")
        if close(got, embedder.linear(resized.flatten(2))):
            hints.append("Label maps must be resized without inventing in-between values: which interpolation "
                         "mode keeps a one-hot mask one-hot?")
        transposed = ref.resize_mask(mask[:, start:], (resolution, resolution)).transpose(-1, -2)
        if close(got, embedder.linear(transposed.flatten(2))):
            hints.append("Your flattening reads the mask column by column: flatten it row by row (h, then w).")
        check_values(got, expected, "the tokens", hints=hints)

    return run


def _random_one_hot(batch: int, classes: int, h: int, w: int, absent: int | None = None) -> torch.Tensor:
    labels = torch.randint(0, classes, (batch, h, w))
    if absent is not None:
        labels[labels == absent] = (absent + 1) % classes
    return F.one_hot(labels, classes).permute(0, 3, 1, 2).float()


def check_embed_mask(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``embed_mask(one_hot, linear, embed_resolution, exclude_background) -> tokens (B, K', L)`` (medium)."""
    def cases() -> list[Case]:
        return [
            Case("a 2×6×32×32 mask, background excluded",
                 lazy(_embed_case, _random_one_hot(2, 6, 32, 32), 16, True, 4)),
            Case("batch 1 with class 3 absent",
                 lazy(_embed_case, _random_one_hot(1, 6, 32, 32, absent=3), 16, True, 4)),
            Case("a non-square 48×64 mask, background kept",
                 lazy(_embed_case, _random_one_hot(2, 4, 48, 64), 8, False, 2)),
        ]
    return run_check("embed_mask", student, cases, strict, quiet)
