"""Label maps and one-hot masks: conversion, validation (errors that say what to fix), colouring.

Every model in this package consumes a one-hot mask M of shape (B, K, H, W) (paper notation,
docs/architecture.md#notation-and-inputs). Users hand us integer label maps far more often, so the conversion lives
here, next to
the checks that turn silent mistakes (a 255 border, a 20-class map into a 19-class model, an RGB
colour mask) into a ``ValueError`` that names the problem and the expected value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def labels_to_one_hot(labels: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Integer labels (B, H, W) -> float one-hot (B, K, H, W).

    Pixels equal to ``ignore_index`` get an all-zero column: they belong to no class, so they
    neither feed the mask embedder nor count in the attention loss. Any other value outside
    [0, K) is an error, never clipped.
    """
    if labels.dim() != 3:
        raise ValueError(f"label map must have shape (B, H, W), got {tuple(labels.shape)}")
    if labels.is_floating_point():
        if not torch.equal(labels, labels.round()):
            raise ValueError("label map holds non-integer values; pass integer class ids")
        labels = labels.long()
    labels = labels.long()
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_index is None else labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        values = sorted(torch.unique(labels[bad]).tolist())[:10]
        hint = "" if ignore_index is None else f" (ignore label {ignore_index} is allowed)"
        raise ValueError(
            f"label values {values} are outside [0, {num_classes}){hint}; the model expects "
            f"{num_classes} classes. Check the dataset's class count or set ignore_index."
        )
    one_hot = F.one_hot(labels.clamp(0, num_classes - 1) * valid, num_classes)  # (B, H, W, K)
    one_hot = one_hot * valid.unsqueeze(-1)  # ignore pixels -> all zero
    return one_hot.permute(0, 3, 1, 2).float()  # (B, K, H, W)


def check_one_hot(mask: Tensor, num_classes: int, allow_empty_pixels: bool = False) -> None:
    """Raise ``ValueError`` unless ``mask`` (B, K, H, W) is a one-hot mask with K channels."""
    if mask.dim() != 4:
        raise ValueError(f"one-hot mask must have shape (B, K, H, W), got {tuple(mask.shape)}")
    if mask.shape[1] != num_classes:
        raise ValueError(
            f"mask has {mask.shape[1]} class channels but the model expects {num_classes}; "
            "build the model with the dataset's class count (config.num_classes)."
        )
    if not torch.all((mask == 0) | (mask == 1)):
        raise ValueError("one-hot mask holds values other than 0 and 1; pass integer labels instead")
    per_pixel = mask.sum(dim=1)
    if (per_pixel > 1).any() or (not allow_empty_pixels and (per_pixel < 1).any()):
        raise ValueError(
            "mask is not one-hot: some pixels belong to "
            f"{int(per_pixel.max())} classes and some to {int(per_pixel.min())}; every pixel "
            "must have exactly one class. For hand-composed masks use model.embed_mask/decode."
        )


def as_one_hot(mask: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Accept integer labels (B, H, W) or a one-hot mask (B, K, H, W); return validated one-hot."""
    if mask.dim() == 3:
        return labels_to_one_hot(mask, num_classes, ignore_index)
    if mask.dim() == 4:
        if mask.shape[1] == 1:
            raise ValueError(
                "mask has shape (B, 1, H, W); pass integer labels as (B, H, W) or a one-hot "
                f"mask as (B, {num_classes}, H, W)"
            )
        check_one_hot(mask, num_classes, allow_empty_pixels=ignore_index is not None)
        return mask.float()
    raise ValueError(
        f"mask must be labels (B, H, W) or one-hot (B, {num_classes}, H, W), got {tuple(mask.shape)}"
    )


def classes_present(one_hot: Tensor) -> Tensor:
    """One-hot (B, K, H, W) -> (B, K) bool: which classes cover at least one pixel of each sample."""
    return one_hot.flatten(2).amax(-1) > 0


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


def check_image(image: Tensor, mask: Tensor, size: int) -> None:
    """Raise ``ValueError`` unless ``image`` is (B, 3, size, size) and ``mask`` has its size and batch."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must have shape (B, 3, H, W), got {tuple(image.shape)}")
    if tuple(image.shape[-2:]) != (size, size):
        raise ValueError(
            f"image size {tuple(image.shape[-2:])} is not supported by this config: expected "
            f"({size}, {size}); resize the data or build the model with image_size={image.shape[-1]}"
        )
    check_mask_size(mask, size)
    if mask.shape[0] != image.shape[0]:
        raise ValueError(f"image batch {image.shape[0]} != mask batch {mask.shape[0]}")


def check_mask_size(mask: Tensor, size: int) -> None:
    if tuple(mask.shape[-2:]) != (size, size):
        raise ValueError(
            f"mask is {tuple(mask.shape[-2:])} but the model draws ({size}, {size}) images; they must "
            "match (resize the mask with nearest-neighbour interpolation)"
        )
