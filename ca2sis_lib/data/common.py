"""What every dataset of this package shares: the item format, batches of items, files on disk.

Every dataset (the toy faces generated on the fly, a segmentation folder, CelebAMask-HQ) returns
the same item, so training and evaluation code never asks where the data came from::

    {"image": FloatTensor (3, H, W) in [-1, 1], "label": LongTensor (H, W), "name": str}

and exposes ``num_classes``, ``class_names``, ``palette`` (one RGB triple per class, for drawing
label maps) and ``ignore_index`` (a label value that belongs to no class, or None).

On disk a split is two folders with matching file stems: ``images/`` (RGB, any common format) and
``labels/`` (single-channel PNG whose pixel values are class ids). A ``dataset.json`` next to the
splits records the class names, palette and ignore label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

DATASET_INFO = "dataset.json"
IMAGE_DIR, LABEL_DIR = "images", "labels"


def make_item(image: np.ndarray, label: np.ndarray, name: str) -> dict[str, Any]:
    """Build the common item from an (H, W, 3) image (uint8, or float in [0, 1]) and an (H, W) label map."""
    if not image.flags.writeable:  # torch.from_numpy wants memory it may write to
        image = image.copy()
    if image.dtype == np.uint8:
        pixels = torch.from_numpy(np.ascontiguousarray(image)).float().div_(127.5).sub_(1.0)
    else:
        pixels = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).mul(2.0).sub_(1.0)
    return {
        "image": pixels.permute(2, 0, 1).contiguous(),  # (H, W, 3) -> (3, H, W), [-1, 1]
        "label": torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64)),  # (H, W)
        "name": name,
    }


def stack_items(items: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Items of any dataset here -> (images (N, 3, H, W) in [-1, 1], labels (N, H, W) int64)."""
    if not items:
        raise ValueError("no items to stack: pass at least one dataset item")
    return torch.stack([x["image"] for x in items]), torch.stack([x["label"] for x in items])


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8 (rounded); uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255), 0, 255).astype(np.uint8)


def save_pair(split_dir: str | Path, name: str, image: np.ndarray, label: np.ndarray,
              image_format: str = "png") -> tuple[Path, Path]:
    """Write ``images/<name>.<image_format>`` and ``labels/<name>.png`` (class ids as 8-bit grey)."""
    split_dir = Path(split_dir)
    (split_dir / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    (split_dir / LABEL_DIR).mkdir(parents=True, exist_ok=True)
    label = np.asarray(label)
    if label.min(initial=0) < 0 or label.max(initial=0) > 255:
        raise ValueError(f"label ids must be in [0, 255] for an 8-bit PNG, got {label.min()}..{label.max()}")
    image_path = split_dir / IMAGE_DIR / f"{name}.{image_format}"
    label_path = split_dir / LABEL_DIR / f"{name}.png"
    options = {"quality": 95} if image_format in ("jpg", "jpeg") else {}
    Image.fromarray(to_uint8(image)).save(image_path, **options)
    Image.fromarray(label.astype(np.uint8)).save(label_path)
    return image_path, label_path


def write_dataset_info(root: str | Path, name: str, class_names: Sequence[str], palette: Sequence[Sequence[int]],
                       ignore_index: int | None = None, **extra: Any) -> Path:
    """Record what a dataset folder contains (read back by the folder dataset and the checker)."""
    if len(palette) != len(class_names):
        raise ValueError(f"{len(class_names)} class names but {len(palette)} palette colours")
    info = {"name": name, "num_classes": len(class_names), "class_names": list(class_names),
            "palette": [list(map(int, c)) for c in palette], "ignore_index": ignore_index, **extra}
    path = Path(root) / DATASET_INFO
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2))
    return path


def read_dataset_info(folder: str | Path) -> dict[str, Any] | None:
    """``dataset.json`` of ``folder`` or of its parent (so a split folder finds its dataset's info),
    checked (:func:`check_dataset_info`); None when there is none."""
    folder = Path(folder)
    for candidate in (folder / DATASET_INFO, folder.parent / DATASET_INFO):
        if candidate.is_file():
            return check_dataset_info(read_json(candidate, _dataset_info_fix(candidate)), candidate)
    return None


def _dataset_info_fix(path: str | Path) -> str:
    return (f"correct {path} (ca2sis_lib.data.common.write_dataset_info writes a valid one), or delete it and give "
            "the settings as arguments")


def read_json(path: str | Path, fix: str) -> Any:
    """A JSON file's value; a file that is not JSON is a ValueError naming it, where it breaks, and ``fix``."""
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}). Fix: {fix}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_palette(value: Any, what: str, count: int | None = None, distinct: bool = False) -> list[tuple[int, ...]]:
    """``value`` (read from JSON) as one (R, G, B) triple of integers 0-255 per class, or a ValueError
    naming ``what``, the first bad entry and the expected form; ``count``: the number of classes;
    ``distinct``: no colour given twice (a colour mask could not tell those classes apart)."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{what} must be a list of colours [R, G, B], one per class; got {type(value).__name__}")
    for k, colour in enumerate(value):
        if not (isinstance(colour, list | tuple) and len(colour) == 3 and all(_is_int(v) and 0 <= v <= 255
                                                                               for v in colour)):
            raise ValueError(f"{what}: colour {k} is {colour!r}; each colour is [R, G, B] with integers 0-255, "
                             "e.g. [255, 0, 0]")
    if count is not None and len(value) != count:
        raise ValueError(f"{what} has {len(value)} colours for {count} classes: give one colour per class, in "
                         "class-id order")
    palette = [tuple(colour) for colour in value]
    if distinct and len(set(palette)) < len(palette):
        twice = next(c for c in palette if palette.count(c) > 1)
        classes = [k for k, c in enumerate(palette) if c == twice]
        raise ValueError(f"{what} gives the colour {list(twice)} to classes {classes}: a colour mask could not tell "
                         "them apart; give each class its own colour")
    return palette


def check_dataset_info(info: Any, path: str | Path) -> dict[str, Any]:
    """``info`` read from ``path`` (a dataset.json), if its entries have the types and sizes
    :func:`write_dataset_info` gives them; else one ValueError listing what is wrong."""
    fix = f"Fix: {_dataset_info_fix(path)}"
    if not isinstance(info, dict):
        raise ValueError(f"{path} must hold a JSON object such as {{\"num_classes\": 12, \"class_names\": [...]}}, "
                         f"not a {type(info).__name__}. {fix}")
    k, names, problems = info.get("num_classes"), info.get("class_names"), []
    if k is not None and not (_is_int(k) and k >= 1):
        problems.append(f"num_classes is {k!r}, not a positive integer")
        k = None
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        problems.append(f"class_names must be a list of names (strings), got {names!r:.60}")
    elif names is not None and k is not None and len(names) != k:
        problems.append(f"{len(names)} class_names for num_classes={k}")
    if info.get("palette") is not None:
        try:
            check_palette(info["palette"], "palette", k)
        except ValueError as error:
            problems.append(str(error))
    ignore = info.get("ignore_index")
    if ignore is not None and not (_is_int(ignore) and ignore >= 0):
        problems.append(f"ignore_index is {ignore!r}: give a label value (e.g. 255) or null")
    pairs = info.get("lr_pairs")
    if pairs is not None and not (isinstance(pairs, list) and all(
            isinstance(p, list) and len(p) == 2 and all(_is_int(c) and 0 <= c < (k or 256) for c in p) for p in pairs)):
        problems.append(f"lr_pairs must be a list of [left class id, right class id] pairs, got {pairs!r:.60}")
    if problems:
        raise ValueError(f"{path}: {'; '.join(problems)}. {fix}")
    return info
