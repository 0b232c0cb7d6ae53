"""The training split and the sampler that makes each step's batch a pure function of the step."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler

from .config import TrainConfig


def build_dataset(cfg: TrainConfig, num_classes: int, image_size: int) -> Dataset:
    """The toy faces, or a folder with images/ and labels/ (shorter side resized to ``load_size``,
    then cropped to ``image_size``, at random and flipped when augmenting)."""
    if cfg.data == "toy":
        from ..data.toy import ToyFaces

        dataset = ToyFaces(num_samples=cfg.toy_samples, size=image_size, seed=cfg.data_seed, split="train")
    else:
        from ..data.common import read_dataset_info
        from ..data.folder import SegmentationFolder

        declared = (read_dataset_info(cfg.data) or {}).get("num_classes")
        dataset = SegmentationFolder(cfg.data, num_classes=declared or num_classes, resize=cfg.load_size or image_size,
                                     crop=image_size, random_crop=cfg.augment, flip_p=0.5 if cfg.augment else 0.0)
    if len(dataset) == 0:
        raise ValueError(f"the dataset {cfg.data!r} is empty; check the path and its images/ and labels/ folders")
    if getattr(dataset, "num_classes", num_classes) != num_classes:
        raise ValueError(
            f"the dataset has {dataset.num_classes} classes but the model config expects {num_classes}; "
            f"set model_overrides.num_classes={dataset.num_classes} (or use a matching dataset)"
        )
    return dataset


class StepBatchSampler(Sampler[list[int]]):
    """Batches as a pure function of (seed, step, rank): epoch e uses permutation seed + e, and the
    global batch of each step is split between ranks. Starting at any step resumes exactly."""

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int, end_step: int,
                 rank: int = 0, world: int = 1) -> None:
        self.size, self.batch, self.seed = size, batch_size, seed
        self.start, self.end, self.rank, self.world = start_step, end_step, rank, world
        self.per_epoch = size // (batch_size * world)
        if self.per_epoch == 0:
            raise ValueError(f"dataset of {size} samples is smaller than one global batch of {batch_size * world}")

    def indices(self, step: int) -> list[int]:
        epoch, offset = divmod(step, self.per_epoch)
        perm = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        start = (offset * self.world + self.rank) * self.batch
        return perm[start : start + self.batch].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.end):
            yield self.indices(step)

    def __len__(self) -> int:
        return self.end - self.start
