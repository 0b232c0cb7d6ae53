"""Notebook 01 (data): label maps to one-hot masks, colour masks to class ids."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from . import _reference as ref
from ._harness import Case, Mismatch, as_tensor, call_student, check_shape, check_values, lazy, run_check


def _one_hot_case(labels: torch.Tensor, classes: int, ignore_index: int | None = None) -> Callable:
    expected = ref.labels_to_one_hot(labels, classes, ignore_index)

    def run(student: Callable) -> None:
        answer = call_student(student, labels.clone(), classes, ignore_index,
                              names=("labels", "num_classes", "ignore_index"))
        got = as_tensor(answer, "the one-hot mask")
        check_shape(got, expected.shape, "the one-hot mask", ("B", "K", "H", "W"))
        if not got.is_floating_point():
            raise Mismatch(f"the one-hot mask has dtype {got.dtype}; the models multiply it with float weights, "
                           "so return a float tensor")
        hints = []
        if ignore_index is not None and bool((got.sum(1)[labels == ignore_index] != 0).any()):
            hints.append(f"Pixels labelled {ignore_index} (the ignore label) must belong to no class: what should "
                         "their column of the mask hold?")
        elif not bool(((got.sum(1) - 1).abs() < 1e-6)[labels != (ignore_index or -1)].all()):
            hints.append("Some pixels are not in exactly one class: over which dimension should each pixel's "
                         "entries sum to 1?")
        check_values(got, expected, "the one-hot mask", hints=hints)

    return run


def check_to_one_hot(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``to_one_hot(labels (B, H, W), num_classes, ignore_index=None) -> (B, K, H, W) float`` (easy)."""
    def cases() -> list[Case]:
        labels = torch.randint(0, 5, (2, 16, 16))
        absent = torch.randint(0, 4, (1, 16, 16))  # class 4 of 5 never occurs
        rectangle = torch.randint(0, 3, (2, 12, 20))
        ignored = torch.randint(0, 4, (2, 10, 10))
        ignored[:, 0] = 255
        return [Case("a 2×16×16 label map with 5 classes", lazy(_one_hot_case, labels, 5)),
                Case("batch 1 with class 4 absent", lazy(_one_hot_case, absent, 5)),
                Case("a non-square 12×20 map", lazy(_one_hot_case, rectangle, 3)),
                Case("a map whose top row is the ignore label 255", lazy(_one_hot_case, ignored, 4, 255))]
    return run_check("to_one_hot", student, cases, strict, quiet)


def _colour_image(labels: np.ndarray, palette: list[tuple[int, int, int]]) -> np.ndarray:
    return np.asarray(palette, dtype=np.uint8)[labels]  # (H, W, 3)


# Classes a partial comparison of colours cannot tell apart in PALETTE, and the hint for each
CONFUSIONS = (
    (lambda c: c[0], "Two classes in this palette share a red value: compare all three channels."),
    (lambda c: c[:2], "Two classes in this palette differ only in blue: compare all three channels, not red and green "
                      "alone."),
    (sum, "Two classes in this palette have the same channel sum (one's channels are the other's in another order): "
          "compare the channels themselves, not their sum."),
)
PALETTE = [(0, 0, 0), (230, 190, 160), (40, 90, 200), (200, 40, 60), (230, 40, 200), (200, 40, 120), (90, 200, 40)]
# classes 1 and 4 share their red; 3 and 5 their red and green; 2 and 6 their channel sum (330)


def _confusion_hints(got: torch.Tensor, labels: np.ndarray, palette: list[tuple[int, int, int]]) -> list[str]:
    """The hint of each partial comparison (red only, red and green, the sum) that the student's map
    follows: every pair of present classes it cannot tell apart gets one and the same id."""
    present = [k for k in range(len(palette)) if (labels == k).any()]

    def one_id(a: int, b: int) -> bool:
        return len(torch.unique(got[torch.from_numpy((labels == a) | (labels == b))])) == 1

    hints = []
    for key, hint in CONFUSIONS:
        alike = [(a, b) for a in present for b in present if a < b and key(palette[a]) == key(palette[b])]
        if alike and all(one_id(a, b) for a, b in alike):
            hints.append(hint)
    return hints


def _colour_case(labels: np.ndarray, palette: list[tuple[int, int, int]]) -> Callable:
    rgb = _colour_image(labels, palette)
    expected = torch.from_numpy(ref.colours_to_ids(rgb, palette))

    def run(student: Callable) -> None:
        answer = call_student(student, rgb.copy(), list(palette), names=("rgb", "palette"))
        got = as_tensor(answer if isinstance(answer, torch.Tensor) else np.asarray(answer), "the label map")
        check_shape(got, expected.shape, "the label map", ("H", "W"))
        if got.is_floating_point():
            raise Mismatch(f"the label map has dtype {got.dtype}; class ids are integers")
        hints = [] if torch.equal(got.long(), expected) else _confusion_hints(got.long(), labels, palette)
        check_values(got.long(), expected, "the label map", atol=0, hints=hints[:1])

    return run


def _unknown_colour_case(labels: np.ndarray, palette: list[tuple[int, int, int]]) -> Callable:
    rgb = _colour_image(labels, palette)
    rgb[3, 4] = (rgb[3, 4].astype(int) + rgb[3, 5].astype(int)) // 2 + 1  # an antialiased edge pixel
    if tuple(rgb[3, 4]) in palette:
        raise RuntimeError(f"the blended colour {tuple(rgb[3, 4])} must be in no class")

    def run(student: Callable) -> None:
        try:
            call_student(student, rgb.copy(), list(palette), names=("rgb", "palette"))
        except ValueError:
            return
        except NotImplementedError:
            raise
        except Exception as error:
            raise Mismatch(f"you raised {type(error).__name__}; raise a ValueError that names the colour") from None
        raise Mismatch("one pixel has a colour that is in no class (an antialiased edge), and your function "
                       "returned a label map anyway. A silent guess teaches the model the wrong class: raise a "
                       "ValueError that names the colour instead.")

    return run


def check_colours_to_ids(student: Callable, strict: bool = False, quiet: bool = False) -> bool:
    """``colours_to_ids(rgb (H, W, 3) uint8, palette) -> (H, W) int`` that refuses unknown colours (medium)."""
    def cases() -> list[Case]:
        rng = np.random.default_rng(0)
        square = rng.integers(0, len(PALETTE), (16, 16))
        absent = rng.choice([k for k in range(len(PALETTE)) if k != 4], (16, 16))  # class 4 never occurs
        rectangle = rng.integers(0, len(PALETTE), (10, 24))
        return [Case(f"a 16×16 mask with {len(PALETTE)} colours", lazy(_colour_case, square, PALETTE)),
                Case("a mask without class 4", lazy(_colour_case, absent, PALETTE)),
                Case("a non-square 10×24 mask", lazy(_colour_case, rectangle, PALETTE)),
                Case("a mask with one colour that is not in the palette", lazy(_unknown_colour_case, square, PALETTE))]
    return run_check("colours_to_ids", student, cases, strict, quiet)
