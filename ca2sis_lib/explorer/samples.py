"""The toy faces and class colours the explorer offers, as one small JSON file for the page.

Faces are test-split toy faces (seed 0), the ones notebook 04 records first, in the form the toy
data takes on disk (``python -m ca2sis_lib.data.toy``): 8-bit RGB and class ids. Pixels travel
base64-encoded, row-major, so the page reads exactly these bytes (a PNG decoded by a browser could
be colour-managed on the way).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.common import to_uint8
from ..data.toy import TOY_CLASSES, TOY_PALETTE, render_sample, sample_scene

FACES = 8
SPLIT, SEED = "test", 0

# Paul Tol's "muted" qualitative scheme (https://personal.sron.nl/~pault/), chosen to stay distinct
# for colour-blind readers, with its pale grey and the "bright" scheme's blue for the last classes;
# the background stays black. Colour is never the only cue on the page: every class is also named.
COLOUR_BLIND_SAFE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (221, 204, 119), (17, 119, 51), (51, 34, 136), (136, 204, 238), (136, 34, 85),
    (204, 102, 119), (170, 68, 153), (68, 170, 153), (153, 153, 51), (221, 221, 221), (68, 119, 170),
)


@dataclass
class Face:
    name: str
    image: np.ndarray  # (H, W, 3) uint8
    labels: np.ndarray  # (H, W) uint8 class ids


def face_samples(count: int = FACES, size: int = 64) -> list[Face]:
    """The first ``count`` faces of the toy test split (seed 0) at ``size``²."""
    faces = []
    for index in range(count):
        image, labels = render_sample(*sample_scene(index, SEED, SPLIT), size)
        faces.append(Face(f"test face {index}", to_uint8(image), labels.astype(np.uint8)))
    return faces


def encode(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).decode("ascii")


def decode(text: str, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`encode`: base64 text -> uint8 array of ``shape``."""
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(shape)


def samples_document(count: int = FACES, size: int = 64) -> dict[str, Any]:
    return {
        "size": size,
        "classes": list(TOY_CLASSES),
        "palettes": {"course": [list(c) for c in TOY_PALETTE],
                     "colour-blind safe": [list(c) for c in COLOUR_BLIND_SAFE]},
        "faces": [{"name": f.name, "image": encode(f.image), "labels": encode(f.labels)}
                  for f in face_samples(count, size)],
    }


def write_samples(path: str | Path, count: int = FACES, size: int = 64) -> Path:
    path = Path(path)
    path.write_text(json.dumps(samples_document(count, size)) + "\n")
    return path
