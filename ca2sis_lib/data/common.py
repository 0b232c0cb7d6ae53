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
    """``dataset.json`` of ``folder`` or of its parent (so a split folder finds its dataset's info)."""
    folder = Path(folder)
    for candidate in (folder / DATASET_INFO, folder.parent / DATASET_INFO):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    return None
