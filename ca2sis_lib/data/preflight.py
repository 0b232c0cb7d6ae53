"""The dataset preflight, in one place: run on load by every folder dataset and by the command line.

    python -m ca2sis_lib.data.preflight DIR --num-classes K [--ignore-index 255]

DIR is a split (a folder with ``images/`` and ``labels/``) or a dataset root holding such splits
(``train/``, ``test/`` ...). The command reports every problem it finds — missing pairs, image and
label of different sizes, unreadable files, label values outside [0, K) that are not the ignore
label, colour (RGB) masks where class ids are expected — prints the per-class pixel frequency,
and exits with status 1 if anything is wrong. The dataset classes raise the same messages as
:class:`DataError` (a ``ValueError``) when they meet a bad file: each names the file, the problem
and the fix. Nothing is ever clipped or guessed silently.

Every file is decoded in full (a file damaged anywhere fails, not only a cut-off one), turned
upright as its EXIF orientation says (phones store photos sideways with a tag; whoever drew the
label saw them upright), and read with its bit depth (a 16-bit image is scaled to 8 bits, 65535 ->
255; an image of 32-bit integers or floats, whose range is unknown, is refused).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ca2sis_lib.contract import label_range_error
from ca2sis_lib.data.common import IMAGE_DIR, LABEL_DIR, check_palette, read_dataset_info, read_json

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
ID_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L", "1")  # PIL modes that hold one integer per pixel
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")  # 16-bit grey (16-bit colour PNGs open as 'RGB')


class DataError(ValueError):
    """A bad dataset file. The message says which file, what is wrong and how to fix it."""


def _open(path: Path, what: str) -> Image.Image:
    """The file decoded in full and turned upright as its EXIF orientation tag says."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now, every byte: a cut-off or damaged file fails here, not mid-training
            return ImageOps.exif_transpose(image)  # an upright copy (a plain copy when there is no tag)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: cannot read this {what} ({err}); it may be cut off or damaged. Fix: re-export the "
                        "file, or remove it together with its partner in images/ or labels/.") from err


def read_image(path: str | Path) -> np.ndarray:
    """An image as uint8 (H, W, 3) RGB, upright; grey and palette images are converted, alpha is
    dropped, 16-bit grey is scaled to 8 bits (``convert("RGB")`` would clip it to white)."""
    path = Path(path)
    image = _open(path, "image")
    if image.mode in SIXTEEN_BIT_MODES:
        grey = (np.asarray(image).astype(np.uint32) + 128) // 257  # round(x / 257): 65535 -> 255
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)
    if image.mode in ("I", "F"):
        kind = "32-bit integer" if image.mode == "I" else "floating-point"
        raise DataError(f"{path}: a {kind} image (PIL mode {image.mode!r}), whose value range is unknown, so its "
                        "brightness cannot be read. Fix: save it as an 8-bit or 16-bit PNG, or as a JPEG.")
    return np.array(image.convert("RGB"))  # a writable copy


def validate_label(label: np.ndarray, num_classes: int, ignore_index: int | None, path: str | Path) -> None:
    """Raise :class:`DataError` unless ``label`` meets the one label rule
    (:func:`ca2sis_lib.contract.label_range_error`): class ids in [0, K) or the ignore label."""
    message = label_range_error(label, num_classes, ignore_index)
    if message:
        raise DataError(f"{path}: {message}")


def decode_color_label(rgb: np.ndarray, label_colors: Sequence[Sequence[int]], path: str | Path,
                       ignore_color: Sequence[int] | None = None, ignore_index: int | None = None) -> np.ndarray:
    """Colour mask (H, W, 3) -> class ids (H, W): pixel colour ``label_colors[k]`` means class k."""
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    keys = {(int(r) << 16) | (int(g) << 8) | int(b): k for k, (r, g, b) in enumerate(label_colors)}
    if ignore_color is not None:
        if ignore_index is None:
            raise ValueError("ignore_color needs an ignore_index to map it to")
        r, g, b = ignore_color
        keys[(int(r) << 16) | (int(g) << 8) | int(b)] = ignore_index
    colours, inverse = np.unique(code, return_inverse=True)
    unknown = [c for c in colours.tolist() if c not in keys]
    if unknown:
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:8])
        raise DataError(f"{path}: colours [{shown}] are not in the palette of {len(label_colors)} classes. Fix: add "
                        "them to label_colors (or ignore_color), or re-export the mask without antialiasing "
                        "(smoothed edges create in-between colours).")
    return np.array([keys[c] for c in colours.tolist()], dtype=np.int64)[inverse.reshape(code.shape)]


def read_label(path: str | Path, num_classes: int, ignore_index: int | None = None,
               label_colors: Sequence[Sequence[int]] | None = None,
               ignore_color: Sequence[int] | None = None) -> np.ndarray:
    """A label map as int64 (H, W), validated.

    By default the PNG must hold class ids in one channel (grey 'L', palette 'P' or 16-bit); with
    ``label_colors`` it must be a colour mask, decoded through that palette.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DataError(f"{path}: labels must be lossless PNG files, this is {path.suffix!r}; lossy compression "
                        "changes class ids along every edge. Fix: re-export the label maps as PNG.")
    image = _open(path, "label map")
    if label_colors is not None:
        if image.mode not in ("RGB", "RGBA", "P"):
            raise DataError(f"{path}: expected a colour mask (label_colors is set), got a {image.mode!r} image. "
                            "Fix: drop label_colors if the file holds class ids.")
        label = decode_color_label(np.asarray(image.convert("RGB")), label_colors, path, ignore_color, ignore_index)
    elif image.mode in ID_MODES:
        label = np.asarray(image).astype(np.int64)
    elif image.mode in ("RGB", "RGBA", "LA"):
        pixels = np.asarray(image.convert("RGB"))
        grey = bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())
        hint = ("its three channels are equal, so it is an id map saved as colour: convert it with "
                "Image.open(p).convert('L').save(p)" if grey else
                "if it is a colour mask, pass label_colors=<one RGB per class> (CLI: --label-colors FILE.json) "
                "or convert it to ids once")
        raise DataError(f"{path}: is an {image.mode} colour image, but class ids are expected (one channel with "
                        f"values 0..{num_classes - 1}). Fix: {hint}.")
    else:
        raise DataError(f"{path}: PIL mode {image.mode!r} cannot hold class ids. Fix: save labels as 8-bit grey "
                        "('L') or 16-bit PNG of integer ids.")
    validate_label(label, num_classes, ignore_index, path)
    return label


def check_same_size(image: np.ndarray, label: np.ndarray, image_path: str | Path, label_path: str | Path) -> None:
    """Raise :class:`DataError` if an image (H, W, 3) and its label map (H', W') differ in size."""
    if image.shape[:2] != label.shape[:2]:
        (h, w), (lh, lw) = image.shape[:2], label.shape[:2]
        raise DataError(f"{image_path} is {w}x{h} but its label {label_path} is {lw}x{lh}. Fix: resize the label "
                        "with nearest-neighbour interpolation (never bilinear: it invents class ids) to the "
                        "image's size, or re-export both at one size.")


def read_pair(image_path: str | Path, label_path: str | Path, num_classes: int, ignore_index: int | None = None,
              label_colors: Sequence[Sequence[int]] | None = None,
              ignore_color: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An image (H, W, 3) uint8 and its label map (H, W) int64, both read in full and validated, of one size."""
    label = read_label(label_path, num_classes, ignore_index, label_colors, ignore_color)
    image = read_image(image_path)
    check_same_size(image, label, image_path, label_path)
    return image, label


def pair_files(split_dir: str | Path) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Match ``images/<stem>.*`` with ``labels/<stem>.*``: ``([(stem, image, label), ...], problems)``."""
    split_dir = Path(split_dir)
    problems: list[str] = []
    found: dict[str, dict[str, Path]] = {}
    for sub in (IMAGE_DIR, LABEL_DIR):
        folder = split_dir / sub
        if not folder.is_dir():
            problems.append(f"{folder}: folder is missing. Fix: a split needs images/ and labels/ side by side.")
            found[sub] = {}
            continue
        files: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if path.stem in files:
                problems.append(f"{folder}: stem {path.stem!r} has several files ({files[path.stem].name}, "
                                f"{path.name}). Fix: keep one.")
                continue
            files[path.stem] = path
        found[sub] = files
    images, labels = found[IMAGE_DIR], found[LABEL_DIR]
    for stem in sorted(set(images) - set(labels)):
        problems.append(f"{images[stem]}: image has no label (expected {split_dir / LABEL_DIR / stem}.png). "
                        "Fix: add the label map or remove the image.")
    for stem in sorted(set(labels) - set(images)):
        problems.append(f"{labels[stem]}: label has no image (expected {split_dir / IMAGE_DIR / stem}.<jpg|png>). "
                        "Fix: add the image or remove the label.")
    pairs = [(stem, images[stem], labels[stem]) for stem in sorted(set(images) & set(labels))]
    return pairs, problems


@dataclass
class CheckReport:
    """What :func:`check_split` found in one split."""

    split_dir: Path
    num_classes: int
    num_pairs: int = 0
    problems: list[str] = field(default_factory=list)
    pixel_counts: np.ndarray | None = None  # (K,) labelled pixels per class
    images_with_class: np.ndarray | None = None  # (K,) images in which each class appears
    ignored_pixels: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def frequencies(self) -> np.ndarray:
        """Share of labelled (not ignored) pixels per class, sums to 1 (zeros when nothing was read)."""
        counts = self.pixel_counts.astype(np.float64)
        return counts / counts.sum() if counts.sum() else counts

    def format(self, class_names: Sequence[str] | None = None) -> str:
        lines = [f"{self.split_dir}: {self.num_pairs} pairs, {len(self.problems)} problem(s)"]
        lines += [f"  PROBLEM {p}" for p in self.problems]
        total = int(self.pixel_counts.sum()) + self.ignored_pixels
        if total:
            lines.append(f"  {'id':>4} {'class':<14} {'pixels':>8} {'in images':>10}")
            for k, (freq, n) in enumerate(zip(self.frequencies, self.images_with_class)):
                name = class_names[k] if class_names is not None and k < len(class_names) else ""
                lines.append(f"  {k:>4} {name:<14} {freq:>8.2%} {int(n):>10}")
            lines.append(f"  ignored pixels: {self.ignored_pixels / total:.2%}")
        return "\n".join(lines)


def _pair_counts(job: tuple) -> tuple[np.ndarray | None, int, str | None]:
    """One pair read in full: (pixels per class (K,), ignored pixels, None), or (None, 0, the problem)."""
    image_path, label_path, num_classes, ignore_index, label_colors = job
    try:
        _, label = read_pair(image_path, label_path, num_classes, ignore_index, label_colors)
    except DataError as err:
        return None, 0, str(err)
    valid = label[(label >= 0) & (label < num_classes)]
    return np.bincount(valid, minlength=num_classes), label.size - valid.size, None


def check_split(split_dir: str | Path, num_classes: int, ignore_index: int | None = None,
                label_colors: Sequence[Sequence[int]] | None = None, workers: int | None = None) -> CheckReport:
    """Read every pair of a split in full and collect all problems (rather than stopping at the first);
    ``workers`` threads decode (Pillow releases the GIL), default up to 8."""
    pairs, problems = pair_files(split_dir)
    if not pairs:
        problems.append(f"{split_dir}: no image/label pairs, the split is empty. Fix: put images in images/ and "
                        "label maps with the same file stems in labels/.")
    report = CheckReport(Path(split_dir), num_classes, len(pairs), problems,
                         np.zeros(num_classes, dtype=np.int64), np.zeros(num_classes, dtype=np.int64))
    jobs = [(image, label, num_classes, ignore_index, label_colors) for _, image, label in pairs]
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        for counts, ignored, problem in pool.map(_pair_counts, jobs, chunksize=16):
            if problem is not None:
                problems.append(problem)
                continue
            report.pixel_counts += counts
            report.images_with_class += counts > 0
            report.ignored_pixels += ignored
    return report


def find_splits(root: str | Path) -> list[Path]:
    """``root`` itself if it is a split (has images/ or labels/), else its sub-folders that are."""
    root = Path(root)
    is_split = lambda d: (d / IMAGE_DIR).is_dir() or (d / LABEL_DIR).is_dir()
    if is_split(root):
        return [root]
    return [d for d in sorted(root.iterdir()) if d.is_dir() and is_split(d)] if root.is_dir() else []


def read_label_colors(path: str | Path, num_classes: int) -> list[tuple[int, ...]]:
    """The palette file of ``--label-colors``: a JSON list of one [R, G, B] per class, in class-id order,
    no colour twice; a clear ValueError otherwise."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file; give a JSON file with one [R, G, B] per class, e.g. "
                         "[[0, 0, 0], [255, 0, 0]]")
    value = read_json(path, "write one [R, G, B] per class, e.g. [[0, 0, 0], [255, 0, 0]]")
    return check_palette(value, str(path), num_classes, distinct=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ca2sis_lib.data.preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="a split (images/, labels/) or a dataset root with split sub-folders")
    parser.add_argument("--num-classes", type=int, help="K; default: from dataset.json")
    parser.add_argument("--ignore-index", type=int, help="label value meaning 'no class' (e.g. 255)")
    parser.add_argument("--label-colors", help="JSON file with one [R, G, B] per class, for colour masks")
    args = parser.parse_args(argv)

    if not Path(args.dir).is_dir():
        print(f"{args.dir}: no such folder. Give a split (a folder with images/ and labels/) or a dataset root "
              "holding such splits.", file=sys.stderr)
        return 1
    splits = find_splits(args.dir)
    if not splits:
        print(f"{args.dir}: no split found (expected images/ and labels/ here or in sub-folders)", file=sys.stderr)
        return 1
    try:
        info = read_dataset_info(args.dir) or {}
    except ValueError as error:  # a damaged dataset.json: one line naming it and the fix
        print(error, file=sys.stderr)
        return 1
    num_classes = args.num_classes if args.num_classes is not None else info.get("num_classes")
    if num_classes is None:
        parser.error("--num-classes is required (no dataset.json found)")
    ignore_index = args.ignore_index if args.ignore_index is not None else info.get("ignore_index")
    try:
        colors = read_label_colors(args.label_colors, num_classes) if args.label_colors else None
    except (OSError, ValueError) as error:
        print(f"--label-colors: {error}", file=sys.stderr)
        return 1
    failed = False
    for split in splits:
        report = check_split(split, num_classes, ignore_index, colors)
        print(report.format(info.get("class_names")))
        failed |= not report.ok
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
