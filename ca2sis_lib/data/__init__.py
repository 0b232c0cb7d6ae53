"""Data for semantic image synthesis: toy faces with known answers, folder datasets, CelebAMask-HQ.

Every dataset here returns the same item, ``{"image": (3, H, W) float in [-1, 1], "label": (H, W)
int64, "name": str}``, and exposes ``num_classes``, ``class_names``, ``palette``, ``ignore_index``.

* :mod:`.toy` (with :mod:`.toy_scene`, :mod:`.toy_render`, :mod:`.toy_edits`): procedural faces,
  a scene = (layout, style), rendered exactly at any size; ground truths for every edit.
* :mod:`.folder`: ``images/`` + ``labels/`` folders, with mask-exact resize, crop and flip.
* :mod:`.celebamask`: the 19-class benchmark and its preparation from the raw release.
* :mod:`.preflight`: the checks every loader runs, and ``python -m ca2sis_lib.data.preflight``.
"""

from ca2sis_lib.data.celebamask import (
    CELEBAMASK_CLASSES,
    CELEBAMASK_LR_PAIRS,
    CELEBAMASK_PALETTE,
    CelebAMaskHQ,
    make_raw_miniature,
    prepare_celebamask,
)
from ca2sis_lib.data.common import make_item, save_pair, stack_items
from ca2sis_lib.data.folder import PairTransform, SegmentationFolder
from ca2sis_lib.data.preflight import CheckReport, DataError, check_split, read_image, read_label
from ca2sis_lib.data.toy import (
    TOY_CLASSES,
    TOY_LR_PAIRS,
    TOY_PALETTE,
    ToyFaces,
    ToyLayout,
    ToyStyle,
    interpolate_layouts,
    interpolate_styles,
    label_map,
    render,
    sample_scene,
    transfer_class_style,
    transfer_global_style,
    transfer_light,
    transfer_part_shape,
    write_toy_split,
)

__all__ = [
    "CELEBAMASK_CLASSES", "CELEBAMASK_LR_PAIRS", "CELEBAMASK_PALETTE", "CelebAMaskHQ", "make_raw_miniature",
    "prepare_celebamask", "CheckReport", "DataError", "check_split", "read_image", "read_label",
    "make_item", "save_pair", "stack_items", "PairTransform", "SegmentationFolder", "TOY_CLASSES", "TOY_LR_PAIRS",
    "TOY_PALETTE",
    "ToyFaces", "ToyLayout", "ToyStyle", "interpolate_layouts", "interpolate_styles", "label_map", "render",
    "sample_scene", "transfer_class_style", "transfer_global_style", "transfer_light", "transfer_part_shape",
    "write_toy_split",
]
