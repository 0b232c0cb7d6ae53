"""Label maps and one-hot masks: conversion, validation (errors that say what to fix), colouring.

Every model in this package consumes a one-hot mask M of shape (B, K, H, W) (paper notation,
docs/architecture.md#notation-and-inputs). Users hand us integer label maps far more often, so the conversion lives
here, next to
the checks that turn silent mistakes (a 255 border, a 20-class map into a 19-class model, an RGB
colour mask) into an :class:`~ca2sis_lib.contract.InputError` (a ``ValueError``) that names the
problem and the expected value. The checks themselves live in :mod:`ca2sis_lib.contract`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .contract import InputError, check_image, check_labels, check_mask_size, check_one_hot

__all__ = ["InputError", "as_one_hot", "check_image", "check_mask_size", "check_one_hot", "class_centre",
           "classes_present", "colour_labels", "labels_to_one_hot", "resize_mask"]


def labels_to_one_hot(labels: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Integer labels (B, H, W) -> float one-hot (B, K, H, W).

    Pixels equal to ``ignore_index`` get an all-zero column: they belong to no class, so they
    neither feed the mask embedder nor count in the attention loss. Any other value outside
    [0, K) is an error (:func:`ca2sis_lib.contract.check_labels`), never clipped.
    """
    check_labels(labels, num_classes, ignore_index)
    labels = labels.long()
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_index is None else labels != ignore_index
    one_hot = F.one_hot(labels.clamp(0, num_classes - 1) * valid, num_classes)  # (B, H, W, K)
    one_hot = one_hot * valid.unsqueeze(-1)  # ignore pixels -> all zero
    return one_hot.permute(0, 3, 1, 2).float()  # (B, K, H, W)


def as_one_hot(mask: Tensor, num_classes: int, ignore_index: int | None = None, exclusive: bool = True) -> Tensor:
    """Accept integer labels (B, H, W) or a one-hot mask (B, K, H, W); return validated float one-hot.

    ``exclusive=False`` accepts a hand-composed 0/1 mask whose pixels may hold several classes or none.
    """
    if not isinstance(mask, Tensor):
        raise InputError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() == 3:
        return labels_to_one_hot(mask, num_classes, ignore_index)
    if mask.dim() == 4:
        if mask.shape[1] == 1:
            raise InputError(
                "mask has shape (B, 1, H, W); pass integer labels as (B, H, W) or a one-hot "
                f"mask as (B, {num_classes}, H, W)"
            )
        check_one_hot(mask, num_classes, allow_empty_pixels=ignore_index is not None, exclusive=exclusive)
        return mask.float()
    raise InputError(
        f"mask must be labels (B, H, W) or one-hot (B, {num_classes}, H, W), got {tuple(mask.shape)}"
    )


def classes_present(one_hot: Tensor) -> Tensor:
    """One-hot (B, K, H, W) -> (B, K) bool: which classes cover at least one pixel of each sample."""
    return one_hot.flatten(2).amax(-1) > 0


def class_centre(labels: Tensor, cls: int) -> tuple[int, int] | None:
    """The pixel (row, column) of class ``cls`` in a label map (H, W) nearest to the class's centroid (which
    may lie outside a curved part); None when the class is absent."""
    where = torch.nonzero(labels == cls).float()  # (n, 2) rows, columns
    if len(where) == 0:
        return None
    nearest = ((where - where.mean(dim=0)) ** 2).sum(dim=1).argmin()
    return int(where[nearest, 0]), int(where[nearest, 1])


IGNORE_COLOUR = (255, 255, 255)  # white: pixels of no class (an ignore label such as 255 or -1); no palette uses it


def colour_labels(labels: Tensor | np.ndarray, palette: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """Class ids (..., H, W) -> uint8 colours (..., H, W, 3): class k gets ``palette[k]``.

    The one convention for ignored pixels: any id outside [0, K) (an ignore label) is drawn in
    :data:`IGNORE_COLOUR`, never clipped to a class. ``imshow`` and ``PIL.Image.fromarray`` take the
    result as it is; for a [-1, 1] tensor grid use ``torch.from_numpy(c).movedim(-1, -3) / 127.5 - 1``.
    """
    labels = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    table = np.concatenate([np.asarray(palette, dtype=np.uint8).reshape(-1, 3), [IGNORE_COLOUR]]).astype(np.uint8)
    index = np.where((labels >= 0) & (labels < len(table) - 1), labels, len(table) - 1)
    return table[index]


def resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of a (B, K, H, W) mask (docs/architecture.md#notation-and-inputs: always 'nearest')."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask, size=size, mode="nearest")
