"""CelebAMask-HQ: 30,000 face images with 19-class label maps — the benchmark of CA²-SIS.

Two layouts matter:

* the **raw release** (``CelebAMask-HQ/``) has one 1024x1024 image per id in
  ``CelebA-HQ-img/<id>.jpg`` and, per id, one 512x512 binary PNG per visible part in
  ``CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png`` (no file when the part is absent);
* the **pre-processed** layout used by the SPADE/SEAN family, which training reads:
  ``<out>/{train,test}/images/<id>.jpg`` and ``<out>/{train,test}/labels/<id>.png`` (class ids).

``python -m ca2sis_lib.data.celebamask prepare --raw RAW --out OUT [--size 256] [--test-from 28000]``
turns the first into the second: the part masks are painted in the standard class order
(:data:`CELEBAMASK_CLASSES`, skin first, cloth last), so where two annotations overlap the later
part wins; the label map is resized with nearest neighbour, the image with an antialiased
bilinear filter. **Split rule** (the SEAN convention, a parameter): ids >= 28000 are the test
split (2,000 images), all others train (28,000).

``python -m ca2sis_lib.data.celebamask miniature --out DIR`` writes a tiny tree in the raw layout,
drawn from toy faces, to try the pipeline without the 3 GB download.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ca2sis_lib.data.common import save_pair, write_dataset_info
from ca2sis_lib.data.folder import SegmentationFolder, resize_image, resize_label
from ca2sis_lib.data.preflight import DataError, read_image

CELEBAMASK_CLASSES: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)
# The colours customarily used to draw CelebAMask-HQ label maps.
CELEBAMASK_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204), (0, 255, 255),
    (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0), (0, 0, 153), (0, 0, 204),
    (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51), (0, 204, 0),
)
CELEBAMASK_LR_PAIRS: tuple[tuple[int, int], ...] = ((4, 5), (6, 7), (8, 9))  # eyes, brows, ears
RAW_PARTS = CELEBAMASK_CLASSES[1:]  # file suffixes, in painting order: part k has class id k + 1
IMAGE_FOLDER, MASK_FOLDER = "CelebA-HQ-img", "CelebAMask-HQ-mask-anno"
TEST_FROM = 28000


def mask_path(raw: str | Path, image_id: int, part: str) -> Path:
    """Where the raw release keeps the mask of ``part`` for ``image_id``."""
    return Path(raw) / MASK_FOLDER / str(image_id // 2000) / f"{image_id:05d}_{part}.png"


def compose_label(raw: str | Path, image_id: int) -> np.ndarray:
    """Paint the part masks of one id into a label map (uint8, mask resolution): later parts overwrite."""
    label: np.ndarray | None = None
    for class_id, part in enumerate(RAW_PARTS, start=1):
        path = mask_path(raw, image_id, part)
        if not path.is_file():
            continue
        try:
            with Image.open(path) as image:
                mask = np.asarray(image.convert("L")) > 127  # masks are 0 / 255, sometimes saved as RGB
        except OSError as err:
            raise DataError(f"{path}: cannot read this part mask ({err}). Fix: re-extract the archive.") from err
        if label is None:
            label = np.zeros(mask.shape, dtype=np.uint8)
        elif mask.shape != label.shape:
            raise DataError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}, other parts of id {image_id} are "
                            f"{label.shape[1]}x{label.shape[0]}. Fix: re-extract the archive.")
        label[mask] = class_id
    if label is None:
        raise DataError(f"no part masks for id {image_id} under {Path(raw) / MASK_FOLDER}. Fix: point --raw at the "
                        f"release root (the folder holding {IMAGE_FOLDER}/ and {MASK_FOLDER}/).")
    return label


def list_ids(raw: str | Path) -> list[int]:
    """Ids of the images in ``raw/CelebA-HQ-img`` (files named ``<id>.jpg``), sorted."""
    folder = Path(raw) / IMAGE_FOLDER
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not found. Fix: --raw must be the unpacked CelebAMask-HQ/ folder.")
    return sorted(int(p.stem) for p in folder.glob("*.jpg") if p.stem.isdigit())


def split_of(image_id: int, test_from: int = TEST_FROM) -> str:
    """The split rule: ids >= ``test_from`` are test, the rest train."""
    return "test" if image_id >= test_from else "train"


def _prepare_one(job: tuple[Path, Path, int, int, int, str]) -> str:
    raw, out, image_id, size, test_from, image_format = job
    label = resize_label(compose_label(raw, image_id), (size, size))  # nearest: ids stay ids
    image = resize_image(read_image(Path(raw) / IMAGE_FOLDER / f"{image_id}.jpg"), (size, size))
    split = split_of(image_id, test_from)
    save_pair(Path(out) / split, str(image_id), image, label, image_format)
    return split


def prepare_celebamask(raw: str | Path, out: str | Path, size: int = 256, test_from: int = TEST_FROM,
                       limit: int | None = None, workers: int = 1, image_format: str = "jpg") -> dict[str, int]:
    """Build the pre-processed layout from the raw release; returns the number of pairs per split."""
    ids = list_ids(raw)[:limit]
    if not ids:
        raise FileNotFoundError(f"{Path(raw) / IMAGE_FOLDER}: no <id>.jpg images found")
    jobs = [(Path(raw), Path(out), i, size, test_from, image_format) for i in ids]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            splits = list(pool.map(_prepare_one, jobs, chunksize=16))
    else:
        splits = [_prepare_one(job) for job in jobs]
    counts = {s: splits.count(s) for s in ("train", "test")}
    write_dataset_info(out, "celebamask_hq", CELEBAMASK_CLASSES, CELEBAMASK_PALETTE, None, size=size,
                       split_rule=f"id >= {test_from} -> test", lr_pairs=[list(p) for p in CELEBAMASK_LR_PAIRS],
                       splits=counts)
    return counts


class CelebAMaskHQ(SegmentationFolder):
    """The pre-processed CelebAMask-HQ (19 classes) in the common item format.

    ``flip=True`` mirrors half the samples and swaps l/r eyes, brows and ears accordingly.
    """

    def __init__(self, root: str | Path, split: str = "train", resize: int | None = None, flip: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(root, split, num_classes=len(CELEBAMASK_CLASSES), class_names=CELEBAMASK_CLASSES,
                         palette=CELEBAMASK_PALETTE, ignore_index=None, resize=resize,
                         flip_p=0.5 if flip else 0.0, lr_pairs=CELEBAMASK_LR_PAIRS, **kwargs)


# --------------------------------------------------------------------------------------------
# A miniature of the raw release, drawn from toy faces
# --------------------------------------------------------------------------------------------
# Which raw part file each toy part becomes ("mouth" is split into upper and lower lip).
TOY_PART_TO_RAW = {"face": "skin", "nose": "nose", "l_eye": "l_eye", "r_eye": "r_eye", "l_brow": "l_brow",
                   "r_brow": "r_brow", "l_ear": "l_ear", "r_ear": "r_ear", "hair_back": "hair", "hair_bun": "hair",
                   "fringe": "hair", "neck": "neck", "cloth": "cloth"}


def make_raw_miniature(root: str | Path, ids: Sequence[int], mask_size: int = 64,
                       seed: int = 0) -> dict[int, np.ndarray]:
    """Write toy faces in the raw CelebAMask-HQ layout; return the label map each id should get.

    Images are ``2 * mask_size`` wide (like 1024 vs 512). Each toy part becomes the mask of its
    CelebAMask-HQ part, restricted to where it is visible, except the skin mask, which covers
    the whole face (inner parts included, as an annotator's face outline would): painting in
    the standard order must let nose, eyes, brows and lips overwrite it.
    """
    from ca2sis_lib.data.toy import render, sample_scene  # the toy world is only needed here
    from ca2sis_lib.data.toy_render import part_index_map

    root = Path(root)
    (root / IMAGE_FOLDER).mkdir(parents=True, exist_ok=True)
    expected = {}
    for n, image_id in enumerate(ids):
        layout, style = sample_scene(n, seed=seed, split="test")
        image = render(layout, style, 2 * mask_size)
        Image.fromarray(np.rint(image * 255).astype(np.uint8)).save(root / IMAGE_FOLDER / f"{image_id}.jpg",
                                                                    quality=95)
        index = part_index_map(layout, mask_size)  # (S, S) index into layout.parts, -1 = background
        masks: dict[str, np.ndarray] = {}
        for k, part in enumerate(layout.parts):
            visible = index == k
            if part.name == "mouth":  # upper and lower lip, split at the mouth's middle row
                rows = np.nonzero(visible.any(axis=1))[0]
                if rows.size:
                    middle = (rows[0] + rows[-1] + 1) // 2
                    upper = visible.copy()
                    upper[middle:] = False
                    masks["u_lip"], masks["l_lip"] = upper, visible & ~upper
                continue
            raw_part = TOY_PART_TO_RAW[part.name]
            masks[raw_part] = masks.get(raw_part, np.zeros_like(visible)) | visible
        inner = ("nose", "l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip")
        if "skin" in masks:
            masks["skin"] = masks["skin"] | np.logical_or.reduce([masks[p] for p in inner if p in masks])
        label = np.zeros((mask_size, mask_size), dtype=np.uint8)
        for class_id, part in enumerate(RAW_PARTS, start=1):
            if part in masks and masks[part].any():
                path = mask_path(root, image_id, part)
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(masks[part].astype(np.uint8) * 255).save(path)
                label[masks[part]] = class_id
        expected[image_id] = label
    return expected


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ca2sis_lib.data.celebamask", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="raw release -> images/ + labels/ splits")
    prep.add_argument("--raw", required=True, help="the unpacked CelebAMask-HQ/ folder")
    prep.add_argument("--out", required=True, help="output dataset folder, e.g. data/celebamask256")
    prep.add_argument("--size", type=int, default=256, help="side of the written images and labels")
    prep.add_argument("--test-from", type=int, default=TEST_FROM, help="ids >= this go to the test split")
    prep.add_argument("--limit", type=int, help="only the first N ids (a quick try)")
    prep.add_argument("--workers", type=int, default=1, help="processes")
    mini = commands.add_parser("miniature", help="write a tiny raw-layout tree of toy faces")
    mini.add_argument("--out", required=True)
    mini.add_argument("--train", type=int, default=8, help="ids 0..N-1")
    mini.add_argument("--test", type=int, default=2, help="ids 28000..")
    mini.add_argument("--mask-size", type=int, default=64)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        counts = prepare_celebamask(args.raw, args.out, args.size, args.test_from, args.limit, args.workers)
        print(f"wrote {counts['train']} train and {counts['test']} test pairs of {args.size}x{args.size} to {args.out}")
    else:
        ids = list(range(args.train)) + list(range(TEST_FROM, TEST_FROM + args.test))
        make_raw_miniature(args.out, ids, args.mask_size)
        print(f"wrote a raw-layout miniature with {len(ids)} ids to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
