"""Notebook 01 (data): label maps to one-hot masks, colour masks to class ids."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from . import _reference as ref
from ._harness import Case, Mismatch, as_tensor, check_shape, check_values, lazy, run_check


def _one_hot_case(labels: torch.Tensor, classes: int, ignore_index: int | None = None) -> Callable:
    expected = ref.labels_to_one_hot(labels, classes, ignore_index)

    def run(student: Callable) -> None:
        got = as_tensor(student(labels.clone(), classes, ignore_index), "the one-hot mask")
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


def _colour_case(labels: np.ndarray, palette: list[tuple[int, int, int]]) -> Callable:
    rgb = _colour_image(labels, palette)
    expected = torch.from_numpy(ref.colours_to_ids(rgb, palette))

    def run(student: Callable) -> None:
        got = as_tensor(np.asarray(student(rgb.copy(), list(palette))), "the label map")
        check_shape(got, expected.shape, "the label map", ("H", "W"))
        if got.is_floating_point():
            raise Mismatch(f"the label map has dtype {got.dtype}; class ids are integers")
        hints = []
        red_only = torch.from_numpy(np.array([[next(k for k, c in enumerate(palette) if c[0] == r) for r in row]
                                              for row in rgb[..., 0]]))
        if torch.equal(got.long(), red_only) and not torch.equal(red_only, expected):
            hints.append("Two classes in this palette share a red value: compare all three channels.")
        check_values(got.long(), expected, "the label map", atol=0, hints=hints)

    return run


def _unknown_colour_case(labels: np.ndarray, palette: list[tuple[int, int, int]]) -> Callable:
    rgb = _colour_image(labels, palette)
    rgb[3, 4] = (rgb[3, 4].astype(int) + rgb[3, 5].astype(int)) // 2 + 1  # an antialiased edge pixel

    def run(student: Callable) -> None:
        try:
            student(rgb.copy(), list(palette))
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
        palette = [(0, 0, 0), (230, 190, 160), (40, 90, 200), (200, 40, 60), (230, 40, 200)]  # 1 and 4 share red
        square = rng.integers(0, 5, (16, 16))
        absent = rng.integers(0, 4, (16, 16))  # class 4 never occurs
        rectangle = rng.integers(0, 5, (10, 24))
        return [Case("a 16×16 mask with 5 colours", lazy(_colour_case, square, palette)),
                Case("a mask without class 4", lazy(_colour_case, absent, palette)),
                Case("a non-square 10×24 mask", lazy(_colour_case, rectangle, palette)),
                Case("a mask with one colour that is not in the palette", lazy(_unknown_colour_case, square, palette))]
    return run_check("colours_to_ids", student, cases, strict, quiet)
