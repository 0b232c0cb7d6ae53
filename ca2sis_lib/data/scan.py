"""A fast pre-flight over a whole split, run before training's first step: seconds, not hours.

Every image and label file is opened (header only: format, size, mode) and checked to be complete
(a PNG ends with its ``IEND`` chunk, a JPEG with its end-of-image marker; a file without one, or in
another format, is decoded in full to be sure), image and label sizes must agree, labels must hold
class ids. Label *values* need decoding: all label maps are read when there are at most
``max_label_reads`` of them, otherwise that many, evenly spaced, and the report says so (the rest
are still checked, with the same clear errors, when they are loaded). Files are read by a few
threads (Pillow decodes without the GIL). Nothing here touches a random-number generator.

:func:`~ca2sis_lib.data.check.check_split` (the command line) reads every pixel instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ca2sis_lib.data.check import ID_MODES, DataError, read_label

MAX_LABEL_READS = 2000
_ENDINGS = {"PNG": (b"IEND\xaeB`\x82", 12), "JPEG": (b"\xff\xd9", 1024)}  # end marker, bytes searched


@dataclass
class ScanReport:
    """What :func:`scan_split` found: problems (each naming the file and the fix) and what was read."""

    pairs: int
    labels_read: int
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def note(self) -> str:
        sampled = (f"label values of {self.labels_read} of {self.pairs} label maps (evenly spaced; the rest are "
                   "checked when loaded)" if self.labels_read < self.pairs else "all label values")
        return f"data check: headers of {self.pairs} pairs and {sampled} in {self.seconds:.1f} s"


def _complete(path: Path, image: Image.Image) -> bool:
    """Whether the file ends as its format says it must (a cut-off file does not)."""
    ending = _ENDINGS.get(image.format or "")
    if ending is None:
        return False
    marker, window = ending
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - window))
        return marker in handle.read()


def _header(path: Path, what: str) -> tuple[tuple[int, int], str]:
    """(width, height) and mode of a complete, readable file; :class:`DataError` otherwise."""
    try:
        with Image.open(path) as image:
            if not _complete(path, image):
                image.load()  # no end marker (or another format): decode in full to be sure
            return image.size, image.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: cannot read this {what} ({err}); it may be cut off or damaged. Fix: re-export "
                        "the file, or remove it together with its partner in images/ or labels/.") from err


def _check_pair(image_path: Path, label_path: Path, colours: bool) -> None:
    image_size, _ = _header(image_path, "image")
    label_size, mode = _header(label_path, "label map")
    if not colours and mode not in ID_MODES:
        raise DataError(f"{label_path}: is a {mode!r} image, but class ids are expected (one channel: grey 'L', "
                        "palette 'P' or 16-bit). Fix: convert the label maps to ids, or give the colours "
                        "(label_colors) if they are colour masks.")
    if image_size != label_size:
        raise DataError(f"{image_path} is {image_size[0]}x{image_size[1]} but its label {label_path} is "
                        f"{label_size[0]}x{label_size[1]}. Fix: resize the label with nearest-neighbour "
                        "interpolation to the image's size, or re-export both at one size.")


def _checked(job: tuple) -> str | None:
    """Run one check; its DataError becomes a problem line."""
    function, *args = job
    try:
        function(*args)
    except DataError as err:
        return str(err)
    return None


def label_sample(count: int, max_reads: int) -> list[int]:
    """All indices, or ``max_reads`` of them evenly spaced (first and last included)."""
    if count <= max_reads or max_reads < 2:
        return list(range(min(count, max(max_reads, 0))))
    return sorted({round(i * (count - 1) / (max_reads - 1)) for i in range(max_reads)})


def scan_split(pairs: Sequence[tuple[str, Path, Path]], num_classes: int, ignore_index: int | None = None,
               label_colors: Sequence[Sequence[int]] | None = None, max_label_reads: int = MAX_LABEL_READS,
               workers: int | None = None) -> ScanReport:
    """Check every pair's headers and completeness and a sample of label values; collect all problems."""
    start = time.perf_counter()
    colours = label_colors is not None
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        found = list(pool.map(_checked, [(_check_pair, image, label, colours) for _, image, label in pairs],
                              chunksize=64))
        sample = [i for i in label_sample(len(pairs), max_label_reads) if found[i] is None]  # each file once
        found += pool.map(_checked, [(read_label, pairs[i][2], num_classes, ignore_index, label_colors)
                                     for i in sample], chunksize=16)
    return ScanReport(len(pairs), len(sample), time.perf_counter() - start, [p for p in found if p is not None])
