"""A segmentation dataset stored as folders: ``images/`` and ``labels/`` with matching file stems.

This is the layout of the SPADE/SEAN family of pre-processed datasets and of what
``python -m ca2sis_lib.data.toy`` writes, so one class reads them all::

    data/toy64/train/images/000000.png   data/toy64/train/labels/000000.png
    data/celebamask256/test/images/28000.jpg   .../test/labels/28000.png

Labels are integer-id PNGs (or colour PNGs with ``label_colors``), validated on load by
:mod:`ca2sis_lib.data.preflight`. Geometry changes keep masks exact and images smooth:

* resize: the image with an antialiased bilinear filter, the label with nearest neighbour
  sampled at the same pixel centres (no invented in-between ids);
* crop: the same window for both;
* horizontal flip: mirror both, then swap left/right classes (``lr_pairs``, e.g. l_eye <-> r_eye),
  because the person's left eye becomes the right one in the mirror image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ca2sis_lib.data.common import make_item, read_dataset_info
from ca2sis_lib.data.preflight import DataError, pair_files, read_pair


def resize_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map (H, W) -> (h, w): each output pixel centre takes the input
    pixel it falls in. Exact: every output value is an input value."""
    h, w = size
    rows = np.minimum(((np.arange(h) + 0.5) * label.shape[0] / h).astype(np.int64), label.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * label.shape[1] / w).astype(np.int64), label.shape[1] - 1)
    return label[rows[:, None], cols[None, :]]


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Smooth resize of a uint8 image (H, W, 3) -> (h, w, 3): bilinear, antialiased when shrinking."""
    if image.shape[:2] == tuple(size):
        return image
    return np.array(Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.BILINEAR))


def swap_classes(label: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Exchange the ids of each class pair (a, b) in a label map; other values, the ignore label included, stay."""
    if not pairs:
        return label
    table = np.arange(max(int(label.max(initial=0)) + 1, max(max(p) for p in pairs) + 1), dtype=label.dtype)
    for a, b in pairs:
        table[a], table[b] = b, a
    return table[label]


class PairTransform:
    """Resize, crop and flip an (image, label) pair with the same geometry.

    ``resize``: an int scales the shorter side to it (aspect kept), a pair (h, w) sets both.
    ``crop``: an int or (h, w) window, random if ``random_crop`` else centred. ``flip_p``: chance
    of a horizontal flip, after which the classes in ``lr_pairs`` swap ids. The random draws come
    from ``generator`` when one is given (the trainer passes one per item and step, so a batch is
    the same whatever the workers and interruptions), else from torch's global generator.
    """

    def __init__(self, resize: int | tuple[int, int] | None = None, crop: int | tuple[int, int] | None = None,
                 random_crop: bool = False, flip_p: float = 0.0, lr_pairs: Sequence[tuple[int, int]] = ()) -> None:
        if not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"flip_p must be a probability, got {flip_p}")
        self.resize, self.crop, self.random_crop, self.flip_p = resize, crop, random_crop, flip_p
        self.lr_pairs = tuple((int(a), int(b)) for a, b in lr_pairs)

    def _target_size(self, h: int, w: int) -> tuple[int, int]:
        if isinstance(self.resize, int):
            scale = self.resize / min(h, w)
            return max(1, round(h * scale)), max(1, round(w * scale))
        return tuple(self.resize)

    def __call__(self, image: np.ndarray, label: np.ndarray,
                 generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.resize is not None:
            size = self._target_size(*label.shape)
            image, label = resize_image(image, size), resize_label(label, size)
        if self.crop is not None:
            ch, cw = (self.crop, self.crop) if isinstance(self.crop, int) else self.crop
            h, w = label.shape
            if ch > h or cw > w:
                raise ValueError(f"crop {ch}x{cw} is larger than the (resized) image {h}x{w}; resize first")
            if self.random_crop:
                top = int(torch.randint(h - ch + 1, (), generator=generator))
                left = int(torch.randint(w - cw + 1, (), generator=generator))
            else:
                top, left = (h - ch) // 2, (w - cw) // 2
            image, label = image[top:top + ch, left:left + cw], label[top:top + ch, left:left + cw]
        if self.flip_p and float(torch.rand((), generator=generator)) < self.flip_p:
            image, label = image[:, ::-1], swap_classes(label[:, ::-1], self.lr_pairs)
        return np.ascontiguousarray(image), np.ascontiguousarray(label)


class SegmentationFolder(Dataset):
    """Images and label maps from ``root/[split/]images`` and ``root/[split/]labels``.

    Class names, palette and ignore label come from the arguments, else from ``dataset.json``
    (in the split folder or its parent). Missing pairs fail at construction; a bad file fails
    when it is loaded, with a :class:`~ca2sis_lib.data.preflight.DataError` naming it.

    Args:
        root: dataset folder; ``split`` (e.g. "train") selects a sub-folder.
        num_classes: K; labels must be in [0, K) or equal ``ignore_index``.
        label_colors: read labels as colour PNGs, ``label_colors[k]`` being class k's colour;
            ``ignore_color`` (with ``ignore_index``) is the colour of unlabelled pixels.
        resize, crop, random_crop, flip_p, lr_pairs: see :class:`PairTransform`.
    """

    def __init__(self, root: str | Path, split: str | None = None, num_classes: int | None = None,
                 class_names: Sequence[str] | None = None, palette: Sequence[Sequence[int]] | None = None,
                 ignore_index: int | None = None, label_colors: Sequence[Sequence[int]] | None = None,
                 ignore_color: Sequence[int] | None = None, resize: int | tuple[int, int] | None = None,
                 crop: int | tuple[int, int] | None = None,
                 random_crop: bool = False, flip_p: float = 0.0, lr_pairs: Sequence[tuple[int, int]] = ()) -> None:
        self.root = Path(root) if split is None else Path(root) / split
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such dataset folder")
        info = read_dataset_info(self.root) or {}
        self.num_classes = num_classes if num_classes is not None else info.get("num_classes")
        if self.num_classes is None:
            raise ValueError(f"{self.root}: pass num_classes (no dataset.json here or in the parent folder)")
        k_range = range(self.num_classes)
        self.class_names = tuple(class_names or info.get("class_names") or (f"class_{k}" for k in k_range))
        default_palette = [tuple(int(c) for c in np.random.default_rng(k).integers(0, 256, 3)) for k in k_range]
        self.palette = tuple(tuple(int(v) for v in c) for c in (palette or info.get("palette") or default_palette))
        self.ignore_index = ignore_index if ignore_index is not None else info.get("ignore_index")
        if len(self.class_names) != self.num_classes or len(self.palette) != self.num_classes:
            raise ValueError(f"{self.root}: {self.num_classes} classes but {len(self.class_names)} names and "
                             f"{len(self.palette)} palette colours")
        self.label_colors, self.ignore_color = label_colors, ignore_color
        self.transform = PairTransform(resize, crop, random_crop, flip_p, lr_pairs)
        self.pairs, problems = pair_files(self.root)
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise DataError("; ".join(problems[:5]) + more + ". Run `python -m ca2sis_lib.data.preflight "
                            f"{self.root} --num-classes {self.num_classes}` for a full report.")
        if not self.pairs:
            raise DataError(f"{self.root}: no image/label pairs found. Fix: put images in images/ and "
                            "labels with the same stems in labels/.")

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The untransformed pair: uint8 image (H, W, 3) and int64 labels (H, W), both validated."""
        _, image_path, label_path = self.pairs[index]
        return read_pair(image_path, label_path, self.num_classes, self.ignore_index, self.label_colors,
                         self.ignore_color)

    def item(self, index: int, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Item ``index``, its random crop and flip drawn from ``generator`` (default: torch's global one)."""
        image, label = self.transform(*self.load(index), generator=generator)
        return make_item(image, label, self.pairs[index][0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.item(index)
