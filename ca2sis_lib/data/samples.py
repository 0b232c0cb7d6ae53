"""Held-out samples for a trained model: the toy test faces, or a folder's test split, with their class names
and palette. Notebooks 04 and 05 and the lecture app (``make inspector``) all take their samples here.

    samples = held_out_samples("toy", image_size=64, num_classes=12, num_samples=8)
    images, labels = samples.stacked()          # (N, 3, H, W) in [-1, 1], (N, H, W) class ids
    samples.dataset.scene(0)                    # toy faces only: the scene behind an item (ideal edits)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .common import stack_items


@dataclass
class HeldOutSamples:
    """Items of one dataset (``{"image", "label", "name"}``) and what is needed to draw their masks."""

    items: list[dict[str, Any]]
    class_names: list[str]
    palette: np.ndarray  # (K, 3) RGB in 0–255, one colour per class
    dataset: Dataset  # ToyFaces or SegmentationFolder, of which ``items`` are the first

    def __len__(self) -> int:
        return len(self.items)

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, 3, H, W) in [-1, 1], labels (N, H, W) int64)."""
        return stack_items(self.items)


def held_out_samples(data: str, image_size: int, num_classes: int, num_samples: int = 8, seed: int = 0,
                     at_least: int = 1) -> HeldOutSamples:
    """The first ``num_samples`` held-out items for a model of ``image_size``² and ``num_classes`` classes.

    ``data``: "toy" (the toy test split, generated from ``seed``) or a folder with images/ and labels/
    (its test/ split when there is one; ``seed`` is not used). ``at_least``: fewer items is an error
    (the editor needs two, A and B).
    """
    if data == "toy":
        from .toy import TOY_CLASSES, TOY_PALETTE, ToyFaces

        if num_classes != len(TOY_CLASSES):
            raise ValueError(f"the model has {num_classes} classes, the toy faces {len(TOY_CLASSES)}: "
                             "give a dataset of the model's classes with DATA=<folder> (e.g. a prepared "
                             "CelebAMask-HQ for the authors' weights, see notebook 01)")
        dataset = ToyFaces(num_samples, size=image_size, seed=seed, split="test")
        names, palette = list(TOY_CLASSES), np.asarray(TOY_PALETTE)
    else:
        from .folder import SegmentationFolder

        if not Path(data).is_dir():
            raise FileNotFoundError(f"DATA={data!r} is not a folder: give a folder with images/ and labels/ "
                                    "(or a test/ split of them), or leave DATA out for the toy faces")
        split = "test" if (Path(data) / "test").is_dir() else None
        dataset = SegmentationFolder(data, split=split, num_classes=num_classes, resize=image_size)
        names, palette = list(dataset.class_names), np.asarray(dataset.palette)
    items = [dataset[i] for i in range(min(num_samples, len(dataset)))]
    if len(items) < at_least:
        raise ValueError(f"{data}: {at_least} samples are needed here (the editor pairs a sample A with a sample B), "
                         f"found {len(items)}")
    return HeldOutSamples(items, names, palette, dataset)


__all__ = ["HeldOutSamples", "held_out_samples"]
