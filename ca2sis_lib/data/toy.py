"""Toy faces: a procedural dataset of face-like scenes whose every edit has a known answer.

A scene is a pair (layout, style) — see :mod:`~ca2sis_lib.data.toy_scene` for what they hold,
:mod:`~ca2sis_lib.data.toy_render` for how they become an antialiased image and an exact label
map, and :mod:`~ca2sis_lib.data.toy_edits` for the ground truth of style and shape transfers.
This module ties them into a dataset and a command that writes a split to disk::

    python -m ca2sis_lib.data.toy --out data/toy64 --size 64 --train 4000 --test 200

which produces ``out/{train,test}/{images,labels,params}/<index>.{png,png,json}`` and
``out/dataset.json``, the same layout as the real datasets (readable by
:class:`~ca2sis_lib.data.folder.SegmentationFolder`). ``out`` is claimed by the rule of
:mod:`ca2sis_lib.owned_folder`: run again on the same folder, the command replaces everything it
wrote there before (a smaller split kept stale pairs), and it refuses a folder holding anything else.

**Seeds.** Sample ``i`` of split ``s`` under seed ``seed`` draws its layout from
``np.random.default_rng([seed, SPLIT_CODES[s], i, 0])`` and its style from
``np.random.default_rng([seed, SPLIT_CODES[s], i, 1])`` (train = 0, test = 1). The split code is
part of every seed, so no test scene shares a random stream with any train scene, whatever the
seed and the sizes; and a sample depends on nothing but (seed, split, i): not on the order of
access, the worker or the number of threads (rendering is single-threaded numpy). Across machines
the random draws (PCG64 via SeedSequence) are identical; label maps and images could only differ
where a CPU's vectorised sin/cos rounds a last bit differently, far below one 8-bit step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from ca2sis_lib.data.common import make_item, save_pair, stack_items, write_dataset_info
from ca2sis_lib.data.toy_edits import (
    interpolate_layouts,
    interpolate_styles,
    transfer_class_style,
    transfer_global_style,
    transfer_light,
    transfer_part_shape,
)
from ca2sis_lib.data.toy_render import label_map, light_field, part_index_map, render, render_sample, texture_albedo
from ca2sis_lib.data.toy_scene import (
    TOY_CLASSES,
    TOY_LR_PAIRS,
    TOY_PALETTE,
    ClassStyle,
    Frame,
    Light,
    Part,
    ToyLayout,
    ToyStyle,
    sample_layout,
    sample_style,
)
from ca2sis_lib.owned_folder import NotOurFolder, claim

__all__ = [
    "TOY_CLASSES", "TOY_PALETTE", "TOY_LR_PAIRS", "SPLIT_CODES", "ClassStyle", "Frame", "Light", "Part", "ToyLayout",
    "ToyStyle", "ToyFaces", "sample_layout", "sample_style", "sample_scene", "render", "render_sample", "label_map",
    "part_index_map", "light_field", "texture_albedo", "transfer_class_style", "transfer_global_style",
    "transfer_light", "transfer_part_shape", "interpolate_styles", "interpolate_layouts", "write_toy_split",
    "toy_batch",
]

SPLIT_CODES = {"train": 0, "test": 1}


def sample_scene(index: int, seed: int = 0, split: str = "train",
                 correlation: float = 0.0) -> tuple[ToyLayout, ToyStyle]:
    """The (layout, style) of sample ``index``: a pure function of (seed, split, index), see the module doc."""
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    code = SPLIT_CODES[split]
    layout = sample_layout(np.random.default_rng([seed, code, index, 0]))
    style = sample_style(np.random.default_rng([seed, code, index, 1]), correlation)
    return layout, style


class ToyFaces(Dataset):
    """``num_samples`` toy faces generated on the fly (no files), in the package's common item format.

    ``item = {"image": (3, size, size) float in [-1, 1], "label": (size, size) int64, "name": "000042"}``.
    :meth:`scene` gives the parameters behind an item, for ground-truth edits.
    """

    num_classes = len(TOY_CLASSES)
    class_names = TOY_CLASSES
    palette = TOY_PALETTE
    ignore_index = None
    lr_pairs = TOY_LR_PAIRS

    def __init__(self, num_samples: int, size: int = 64, seed: int = 0, split: str = "train",
                 correlation: float = 0.0) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
        if num_samples < 0 or size < 8:
            raise ValueError(f"need num_samples >= 0 and size >= 8, got {num_samples} and {size}")
        self.num_samples, self.size, self.seed = num_samples, size, seed
        self.split, self.correlation = split, correlation

    def __len__(self) -> int:
        return self.num_samples

    def _check_index(self, index: int) -> int:
        if index < 0:
            index += self.num_samples
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        return index

    def scene(self, index: int) -> tuple[ToyLayout, ToyStyle]:
        """The (layout, style) behind item ``index``."""
        return sample_scene(self._check_index(index), self.seed, self.split, self.correlation)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._check_index(index)
        image, labels = render_sample(*self.scene(index), self.size)
        return make_item(image, labels, f"{index:06d}")


def toy_batch(count: int, split: str = "train", size: int = 64, seed: int = 0, start: int = 0
              ) -> tuple[Tensor, Tensor]:
    """Toy samples ``start`` .. ``start + count - 1`` of ``split`` as tensors: (images (N, 3, H, W) in
    [-1, 1], labels (N, H, W)). Each sample depends only on (seed, split, index), so batches of one
    split can be drawn in any order or size and agree with ``ToyFaces`` item by item."""
    data = ToyFaces(num_samples=start + count, size=size, seed=seed, split=split)
    return stack_items([data[i] for i in range(start, start + count)])


TOOL = "python -m ca2sis_lib.data.toy"  # the name its output folders are claimed under


def write_toy_split(out: str | Path, split: str, count: int, size: int = 64, seed: int = 0,
                    correlation: float = 0.0) -> Path:
    """Write ``count`` samples of ``split`` under ``out/split/``: images/, labels/ (ids) and params/ (JSON).
    The split folder must be new or empty (files already there would stay, as stale pairs)."""
    split_dir = Path(out) / split
    folders = [split_dir / sub for sub in ("images", "labels", "params") if (split_dir / sub).is_dir()]
    present = [path for folder in folders for path in folder.iterdir()]
    if present:
        raise ValueError(f"{split_dir} already holds {len(present)} files (e.g. {present[0].name}), which would stay "
                         f"beside the new samples. Fix: write into a new folder, or run `{TOOL} --out {out}`, which "
                         "replaces what it wrote there before.")
    (split_dir / "params").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        layout, style = sample_scene(index, seed, split, correlation)
        image, labels = render_sample(layout, style, size)
        name = f"{index:06d}"
        save_pair(split_dir, name, image, labels)
        params = {"seed": seed, "split": split, "index": index, "correlation": correlation,
                  "layout": layout.to_dict(), "style": style.to_dict()}
        (split_dir / "params" / f"{name}.json").write_text(json.dumps(params))
    return split_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ca2sis_lib.data.toy", description="Write toy-face splits to disk.")
    parser.add_argument("--out", required=True, help="dataset folder, e.g. data/toy64")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--train", type=int, default=4000, help="number of training samples")
    parser.add_argument("--test", type=int, default=200, help="number of test samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--correlation", type=float, default=0.0, help="tie related class styles, in [0, 1]")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        with claim(args.out, TOOL) as folder:
            folder.clear()  # what an earlier run wrote here, unchanged; anything else stops it, nothing removed
            for split, count in (("train", args.train), ("test", args.test)):
                write_toy_split(args.out, split, count, args.size, args.seed, args.correlation)
            write_dataset_info(args.out, "toy_faces", TOY_CLASSES, TOY_PALETTE, None, size=args.size, seed=args.seed,
                               correlation=args.correlation, lr_pairs=[list(p) for p in TOY_LR_PAIRS],
                               splits={"train": args.train, "test": args.test})
    except NotOurFolder as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 1
    print(f"wrote {args.train} train + {args.test} test samples of {args.size}x{args.size} to {args.out} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
