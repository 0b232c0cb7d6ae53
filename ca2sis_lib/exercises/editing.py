"""Notebook 05 (editing): per-class style transfer by swapping style codes, and a shape edit by
swapping mask tokens — both on a small randomly perturbed CA²-SIS, compared with ``ca2sis_lib.editing``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _reference as ref
from ._harness import (
    Case,
    as_tensor,
    attach_hint,
    call_student,
    check_shape,
    check_values,
    close,
    lazy,
    run_check,
    safe_text,
)


def _model(exclude_background: bool) -> nn.Module:
    """A fresh copy of :func:`_pristine_model` for one case: what a student's function does to it
    (weights changed, ``.train()``, a hook left behind) cannot reach the next case or check."""
    return copy.deepcopy(_pristine_model(exclude_background))


@cache
def _pristine_model(exclude_background: bool) -> nn.Module:
    """A narrow CA²-SIS (6 classes, 64², no self-attention) with every weight nudged, so that edits
    change the image; it has every part the edits use, at a fraction of the tiny preset's cost.
    Never handed to a student's function: :func:`_model` copies it."""
    stages = tuple(ref.StageConfig(32, 2, 16, self_attention=False, upsample=up) for up in (False, True, True))
    config = ref.CA2SISConfig.tiny(num_classes=6, exclude_background=exclude_background, stages=stages,
                                   input_channels=32, style_dim=16, style_features_per_class=2, mapping_hidden=32,
                                   embed_resolution=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = ref.CA2SIS(config).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return model


def _inputs(batch: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Two batches of images and one-hot masks (B, 6, 64, 64) in which every class is present."""
    def mask() -> Tensor:
        labels = torch.randint(0, 6, (batch, 8, 8)).repeat_interleave(8, 1).repeat_interleave(8, 2)
        labels[:, :8, :48] = torch.arange(6).repeat_interleave(8)  # each class owns a patch of the first row
        return F.one_hot(labels, 6).permute(0, 3, 1, 2).float()
    return torch.rand(batch, 3, 64, 64) * 2 - 1, mask(), torch.rand(batch, 3, 64, 64) * 2 - 1, mask()


BATCH_AXIS_HINT = ("You indexed the batch axis (dimension 0, of size {batch} in this case) with class ids: "
                   "which dimension of the style codes and of the mask tokens holds the classes?")


def _rows_swapped(a: Tensor, b: Tensor, rows: list[int], batch_axis: bool = False) -> Tensor | None:
    """``a`` with the given rows of dimension 1 (or, the mistake, of dimension 0) taken from ``b``;
    None when the rows do not exist along that dimension."""
    dim = 0 if batch_axis else 1
    if any(not 0 <= r < a.shape[dim] for r in rows):
        return None
    out = a.clone()
    if batch_axis:
        out[rows] = b[rows]
    else:
        out[:, rows] = b[:, rows]
    return out


def _decode(model: nn.Module, tokens: Tensor, styles: Tensor) -> Tensor:
    return model.decode(tokens, styles).image


def _style_case(batch: int, classes: list[int]) -> Callable:
    model = _model(True)
    a, ma, b, mb = _inputs(batch)
    expected = ref.transfer_style(model, a, ma, b, mb, classes)

    return _edited_image_case(model, (a, ma, b, mb), classes, expected,
                              lambda got: _style_hints(model, got, a, ma, b, mb, classes))


def _style_hints(model: nn.Module, got: Tensor, a: Tensor, ma: Tensor, b: Tensor, mb: Tensor,
                 classes: list[int]) -> list[str]:
    """Which typical mistake gives the student's image (computed only when the answer is wrong)."""
    tokens_a, styles_a, styles_b = model.embed_mask(ma), model.encode_style(a, ma), model.encode_style(b, mb)
    swapped = _rows_swapped(styles_a, styles_b, classes)
    mistakes = {
        "Every class took B's style code; only the rows of `classes` should.": lambda: (tokens_a, styles_b),
        "The image follows B's layout: keep A's mask tokens, swap only style codes.": lambda: (model.embed_mask(mb),
                                                                                             swapped),
        "The image is A's reconstruction: no style code was taken from B.": lambda: (tokens_a, styles_a),
    }
    by_batch = _rows_swapped(styles_a, styles_b, classes, batch_axis=True)
    if by_batch is not None:  # class ids that are also valid batch indices
        mistakes[BATCH_AXIS_HINT.format(batch=a.shape[0])] = lambda: (tokens_a, by_batch)
    return _first_match(model, got, mistakes.items())


def _first_match(model: nn.Module, got: Tensor,
                 mistakes: Iterable[tuple[str, Callable[[], tuple[Tensor, Tensor]]]]) -> list[str]:
    """The hint of the first (hint, make (tokens, styles)) pair whose tokens and styles decode to the
    student's image (decoded one by one, in order)."""
    for text, make in mistakes:
        if close(got, _decode(model, *make())):
            return [text]
    return []


def check_swap_style_codes(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``swap_style_codes(model, image_a, mask_a, image_b, mask_b, classes) -> image`` (easy)."""
    def cases() -> list[Case]:
        return [Case("batch 2, class 3", lazy(_style_case, 2, [3])),
                Case("batch 1, the background (class 0) and class 5", lazy(_style_case, 1, [0, 5]))]
    return run_check("swap_style_codes", student, cases, strict, quiet)


def _shape_case(batch: int, classes: list[int], exclude_background: bool) -> Callable:
    model = _model(exclude_background)
    a, ma, b, mb = _inputs(batch)
    expected = ref.transfer_shape_without_mask(model, a, ma, b, mb, classes, with_style=False)

    return _edited_image_case(model, (a, ma, mb), classes, expected,
                              lambda got: _shape_hints(model, got, a, ma, b, mb, classes))


def _shape_hints(model: nn.Module, got: Tensor, a: Tensor, ma: Tensor, b: Tensor, mb: Tensor,
                 classes: list[int]) -> list[str]:
    tokens_a, tokens_b, styles_a = model.embed_mask(ma), model.embed_mask(mb), model.encode_style(a, ma)
    expected_tokens = ref.swapped_tokens(model, tokens_a, tokens_b, classes)
    unshifted = tokens_a.clone()
    rows = [c for c in classes if c < unshifted.shape[1]]
    unshifted[:, rows] = tokens_b[:, rows]
    mistakes = {
        "The style codes differ from A's: encode A's styles from A's image with A's own mask.": lambda: (
            expected_tokens, model.encode_style(a, mb)),
        "The image is A's reconstruction: no token was taken from B.": lambda: (tokens_a, styles_a),
    }
    if model.config.exclude_background:
        mistakes = {"You swapped the wrong token rows: row k of the tokens is not class k in this model. Which "
                    "class has no token (model.config.exclude_background)?": lambda: (unshifted, styles_a), **mistakes}
    pairs = list(mistakes.items())
    shifted = [c - int(model.config.exclude_background) for c in classes]
    for indices in (shifted, classes):  # token rows (or class ids) used as batch indices
        by_batch = _rows_swapped(tokens_a, tokens_b, indices, batch_axis=True)
        if by_batch is not None:
            pairs.append((BATCH_AXIS_HINT.format(batch=a.shape[0]), lambda t=by_batch: (t, styles_a)))
    return _first_match(model, got, pairs)


def check_swap_shape_tokens(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``swap_shape_tokens(model, image_a, mask_a, mask_b, classes) -> image``: B's mask tokens of
    ``classes`` in A, A's styles, no mask composed (medium)."""
    def cases() -> list[Case]:
        return [Case("batch 2, class 2, background excluded from the tokens", lazy(_shape_case, 2, [2], True)),
                Case("batch 1, classes 1 and 4", lazy(_shape_case, 1, [1, 4], True)),
                Case("a model that keeps a background token, class 3", lazy(_shape_case, 1, [3], False))]
    return run_check("swap_shape_tokens", student, cases, strict, quiet)


def _edited_image_case(model: nn.Module, inputs: tuple[Tensor, ...], classes: list[int], expected: Tensor,
                       hints: Callable[[Tensor], list[str]]) -> Callable:
    """A case that calls ``student(model, *inputs, classes)``: inputs and model untouched, shape, then
    values (the hints are computed only when the image is wrong)."""
    batch = inputs[0].shape[0]
    names = ("model", "image_a", "mask_a", "image_b", "mask_b", "classes") if len(inputs) == 4 else (
        "model", "image_a", "mask_a", "mask_b", "classes")

    def run(student: Callable) -> None:
        try:
            answer = call_student(student, model, *(t.clone() for t in inputs), list(classes), names=names)
        except IndexError as error:  # a class id used on the batch axis: "... for dimension 0 with size 2"
            if f"dimension 0 with size {batch}" in safe_text(error):
                attach_hint(error, BATCH_AXIS_HINT.format(batch=batch))
            raise
        got = as_tensor(answer, "the edited image")
        check_shape(got, expected.shape, "the edited image", ("B", "3", "H", "W"))
        if not close(got, expected):
            check_values(got, expected, "the edited image", hints=hints(got))

    return run
