"""Toy faces: a procedural dataset of face-like scenes whose every edit has a known answer.

A scene is a pair (layout, style) — see :mod:`~ca2sis_lib.data.toy_scene` for what they hold,
:mod:`~ca2sis_lib.data.toy_render` for how they become an antialiased image and an exact label
map, and :mod:`~ca2sis_lib.data.toy_edits` for the ground truth of style and shape transfers.
This module ties them into a dataset and a command that writes a split to disk::

    python -m ca2sis_lib.data.toy --out data/toy64 --size 64 --train 4000 --test 200

which produces ``out/{train,test}/{images,labels,params}/<index>.{png,png,json}`` and
``out/dataset.json``, the same layout as the real datasets (readable by
:class:`~ca2sis_lib.data.folder.SegmentationFolder`). Written again into the same folder, it
removes the samples of the earlier toy data beyond the new counts (a smaller split would
otherwise keep stale pairs); it refuses a folder holding another dataset or files it did not write.

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
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from ca2sis_lib.data.common import DATASET_INFO, make_item, save_pair, stack_items, write_dataset_info
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


TOY_NAME = "toy_faces"  # the name in dataset.json of the folders this module writes
_TOY_FILE = re.compile(r"\d{6}\.(png|json)")  # images/000012.png, labels/000012.png, params/000012.json


def _toy_folder(out: Path) -> bool:
    """Whether ``out`` holds toy data written here (its dataset.json says so); refuses another dataset."""
    info_path = out / DATASET_INFO
    if not info_path.is_file():
        return False
    try:
        name = json.loads(info_path.read_text()).get("name")
    except (ValueError, AttributeError):
        name = "<unreadable>"
    if name != TOY_NAME:
        raise ValueError(f"{out} holds another dataset ({name!r} in {info_path}); nothing was written. Write the "
                         "toy data into an empty or new folder (--out).")
    return True


def _remove_earlier_samples(split_dir: Path, count: int) -> int:
    """Delete the samples >= ``count`` that earlier toy data left in ``split_dir``; returns how many.
    Refuses (deleting nothing) a folder holding any file this module did not write."""
    found = [p for sub in ("images", "labels", "params") if (split_dir / sub).is_dir()
             for p in sorted((split_dir / sub).iterdir())]
    foreign = [p for p in found if not (p.is_file() and _TOY_FILE.fullmatch(p.name))]
    if found and not _toy_folder(split_dir.parent):
        foreign = found  # no toy dataset.json beside it: none of these files are known to be ours
    if foreign:
        shown = ", ".join(str(p) for p in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ValueError(f"{split_dir} holds files not written by this command ({shown}); nothing was written or "
                         "removed. Write the toy data into an empty or new folder (--out).")
    stale = [p for p in found if int(p.name[:6]) >= count]
    for path in stale:
        path.unlink()
    return len({p.name[:6] for p in stale})


def write_toy_split(out: str | Path, split: str, count: int, size: int = 64, seed: int = 0,
                    correlation: float = 0.0) -> Path:
    """Write ``count`` samples of ``split`` under ``out/split/``: images/, labels/ (ids) and params/ (JSON).
    Samples of earlier toy data there beyond ``count`` are removed; any other file stops it."""
    split_dir = Path(out) / split
    removed = _remove_earlier_samples(split_dir, count)
    if removed:
        print(f"removed {removed} pairs of an earlier toy generation from {split_dir} (beyond the {count} written now)")
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
    _toy_folder(Path(args.out))  # another dataset there: stop before writing anything
    for split, count in (("train", args.train), ("test", args.test)):
        write_toy_split(args.out, split, count, args.size, args.seed, args.correlation)
    write_dataset_info(args.out, TOY_NAME, TOY_CLASSES, TOY_PALETTE, None, size=args.size, seed=args.seed,
                       correlation=args.correlation, lr_pairs=[list(p) for p in TOY_LR_PAIRS],
                       splits={"train": args.train, "test": args.test})
    print(f"wrote {args.train} train + {args.test} test samples of {args.size}x{args.size} to {args.out} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
