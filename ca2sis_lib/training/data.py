"""The training split, checked before the first step, and the sampler and items that make each
step's batch a pure function of (seed, step): which items (:class:`StepBatchSampler`) and how each
is augmented (:class:`StepItems`: a random stream per (seed, step, item)), whatever the number of
loader workers and wherever a run was interrupted. :func:`data_files` is the file list a
checkpoint records, so that a resume on other files is noticed (:func:`~.resume.check_same_data`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..data.preflight import DataError
from .config import TrainConfig


def build_dataset(cfg: TrainConfig, num_classes: int, image_size: int, ignore_index: int | None = None) -> Dataset:
    """The toy faces, or a folder with images/ and labels/ (shorter side resized to ``load_size``,
    then cropped to ``image_size``, at random and flipped when augmenting), checked before the
    first step (:func:`preflight`)."""
    if cfg.data == "toy":
        from ..data.toy import ToyFaces

        dataset = ToyFaces(num_samples=cfg.toy_samples, size=image_size, seed=cfg.data_seed, split="train")
    else:
        dataset = _folder_dataset(cfg, num_classes, image_size, ignore_index)
    if len(dataset) == 0:
        raise ValueError(f"the dataset {cfg.data!r} is empty; check the path and its images/ and labels/ folders")
    if getattr(dataset, "num_classes", num_classes) != num_classes:
        raise ValueError(
            f"the dataset has {dataset.num_classes} classes but the model config expects {num_classes}; "
            f"set model_overrides.num_classes={dataset.num_classes} (or use a matching dataset)"
        )
    if cfg.data != "toy":
        preflight(dataset)
    return dataset


def _folder_dataset(cfg: TrainConfig, num_classes: int, image_size: int, ignore_index: int | None) -> Dataset:
    """A SegmentationFolder with the settings of its dataset.json (classes, ignore label, left/right pairs)."""
    from ..data.common import read_dataset_info
    from ..data.folder import SegmentationFolder

    folder = check_split_folder(cfg.data)
    info = read_dataset_info(folder) or {}
    declared = info.get("ignore_index")
    if declared is not None and declared != ignore_index:
        raise DataError(
            f"{folder}: dataset.json declares ignore_index {declared} (pixels of no class) but the model config "
            f"has ignore_index={ignore_index}; set --set model_overrides.ignore_index={declared} so such pixels "
            "are left out instead of refused"
        )
    if (cfg.load_size or image_size) < image_size:
        raise ValueError(f"load_size={cfg.load_size} is smaller than the model's image_size={image_size}, so the "
                         f"{image_size}x{image_size} crop would not fit; set load_size >= {image_size} (or None)")
    return SegmentationFolder(folder, num_classes=info.get("num_classes") or num_classes, ignore_index=ignore_index,
                              resize=cfg.load_size or image_size, crop=image_size, random_crop=cfg.augment,
                              flip_p=0.5 if cfg.augment else 0.0, lr_pairs=info.get("lr_pairs") or ())


def check_split_folder(data: str) -> Path:
    """The split folder ``data`` (with images/ and labels/), or a clear error: missing, or a dataset
    root whose splits are sub-folders (then it names them)."""
    from ..data.preflight import find_splits

    folder = Path(data)
    if not folder.is_dir():
        raise DataError(f"data={data!r}: no such folder. Give 'toy' or a split folder with images/ and labels/ "
                        "(e.g. data/celebamask256/train)")
    splits = find_splits(folder)
    if splits and splits != [folder]:
        names = ", ".join(str(s) for s in splits)
        suggestion = next((s for s in splits if s.name == "train"), splits[0])
        raise DataError(f"{folder} is a dataset root with the splits {names}; train on one split: "
                        f"--data {suggestion}")
    return folder


def preflight(dataset: Dataset) -> None:
    """Read every file of a folder dataset in full before the first step (decoding, completeness,
    sizes, label values); raise one :class:`DataError` listing the problems."""
    from ..data.preflight import check_split

    start = time.perf_counter()
    report = check_split(dataset.root, dataset.num_classes, dataset.ignore_index, dataset.label_colors)
    if report.problems:
        shown = "\n  ".join(report.problems[:5])
        more = f"\n  ... and {len(report.problems) - 5} more" if len(report.problems) > 5 else ""
        raise DataError(f"{len(report.problems)} problem(s) in {dataset.root} before the first step "
                        f"(nothing was trained):\n  {shown}{more}\nFull report: python -m ca2sis_lib.data.preflight "
                        f"{dataset.root} --num-classes {dataset.num_classes}")
    print(f"data check: {report.num_pairs} pairs read in full in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def data_files(dataset: Dataset) -> list[str] | None:
    """The training files as a checkpoint records them (one stem per image/label pair, in order), or
    None for data generated on the fly (the toy faces: fixed by toy_samples and data_seed)."""
    pairs = getattr(dataset, "pairs", None)
    return None if pairs is None else [stem for stem, _, _ in pairs]


def item_generator(seed: int, step: int, index: int) -> torch.Generator:
    """The random stream of item ``index``'s augmentation at ``step``: a function of (seed, step,
    index) alone, so neither the worker that loads it nor the draws before it can change it."""
    high, low = np.random.SeedSequence([seed, step, index]).generate_state(2)  # a 64-bit hash of the three
    return torch.Generator().manual_seed((int(high) << 32) | int(low))


class StepItems(Dataset):
    """The training items keyed by (step, index): a dataset with random augmentation (an ``item(index,
    generator)`` method, e.g. a folder dataset) draws it from :func:`item_generator`; one without
    (the toy faces) is indexed as it is."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed
        self.augmented = callable(getattr(dataset, "item", None))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        step, index = key
        if self.augmented:
            return self.dataset.item(index, item_generator(self.seed, step, index))
        return self.dataset[index]


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches as a pure function of (seed, step, rank): epoch e uses permutation seed + e, and the
    global batch of each step is split between ranks. Starting at any step resumes exactly. It
    yields (step, index) keys for :class:`StepItems`."""

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

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.end):
            yield [(step, index) for index in self.indices(step)]

    def __len__(self) -> int:
        return self.end - self.start
