"""The input contract of every public entry point, written once: what a model accepts, and the errors.

Every generator (CA²-SIS, SEAN-style, SPADE), the discriminator, the editing operations, the
evaluation and the visualisers call these checks before any arithmetic, so a bad input stops at
the door with an :class:`InputError` (a ``ValueError``) that names the problem and the fix,
instead of a silent wrong answer or a shape error deep inside torch.

The contract:

    image     floating point, (B, 3, S, S) with S = config.image_size, values in [-1, 1], finite.
              Refused only when certainly wrong: integer dtypes ("convert with image.float() / 127.5
              - 1"), NaN / inf pixels, and values beyond [-2, 2] ([0, 255] data gets the conversion).
              Bicubic resizing overshoots [-1, 1] (at most ±1.89, :data:`IMAGE_LIMIT`) and passes.
              Values that are all >= 0 may be [0, 1] data or a bright [-1, 1] image: a warning
              (:class:`InputWarning`, once per calling line), never a refusal.
    mask      integer labels (B, S, S) in [0, K) (``ignore_index`` allowed), or a one-hot
              (B, K, S, S) of exact 0s and 1s; same batch and size as the image. A 3-channel mask that
              is not one-hot is refused as a colour image, with the conversion to class ids.
    styles    (B, K, style_code_dim);  tokens (B, K', token_size²);  noise (B, noise_dim).

Dtype and device policy: **inputs follow the model.** Every tensor is moved to the device of
the model's parameters and floating-point inputs are cast to their dtype (fp16, bf16 and float64
images work with a float32 model, and an fp32 image works with a half model). Integer images are
never cast: their scale is ambiguous, so they get an error naming the conversion.

The value checks cost one reduction and one host sync per tensor (``aminmax`` sees NaN and inf
too); ``benchmarks/input_checks.py`` measures them on a training step. :func:`checks_disabled`
turns the value checks off (shapes are always checked) in the current context only (a
``contextvars`` switch: other threads and tasks keep their checks), e.g. for that measurement.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import re
import sys
import threading
import types
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

# on in every new thread and context; checks_disabled() turns it off for its own block only
_VALUE_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("ca2sis_value_checks", default=True)
# Images are refused beyond ±IMAGE_LIMIT. Bicubic resizing (Keys' kernel, a = -0.75, torch's) of an
# image in [-1, 1] stays within ±(Σ|w|)² = ±1.375² = ±1.89 (one axis, then the other); a
# black-and-white checkerboard enlarged 4x reaches ±1.49. Nothing inside ±2 is certainly wrong.
IMAGE_LIMIT = 2.0


class InputError(ValueError):
    """Bad input to a public function of ca2sis_lib: the message names the problem and the fix."""


class InputWarning(UserWarning):
    """An input that may be wrong but may also be valid (e.g. all values >= 0: [0, 1] data, or a
    bright [-1, 1] image). Issued once per calling line outside ca2sis_lib; never a refusal."""


@contextlib.contextmanager
def checks_disabled() -> Iterator[None]:
    """Skip the value checks (ranges, NaN, one-hot values) inside this block, in this thread or
    task only (other threads keep their checks); shapes stay checked."""
    token = _VALUE_CHECKS.set(False)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def value_checks_enabled() -> bool:
    return _VALUE_CHECKS.get()


def _has_values(x: Tensor) -> bool:
    """Whether value checks apply to ``x``: they are on, and ``x`` holds values (a tensor on the
    ``meta`` device has a shape only, e.g. when shapes are traced without arithmetic)."""
    return _VALUE_CHECKS.get() and x.device.type != "meta"


# code whose frames are skipped to find the line that called ca2sis_lib (nn.Module.__call__ included)
_LIBRARY_DIRS = tuple(os.path.dirname(path) + os.sep for path in (__file__, torch.__file__))
_WARNED_AT: set[tuple[str, int]] = set()
_WARNED_LOCK = threading.Lock()


def outside_caller() -> tuple[types.FrameType | None, int]:
    """For the function that calls this one and then ``warnings.warn``: the first frame outside
    ca2sis_lib and torch that led to it, and the ``stacklevel`` that points the warning there."""
    frame, level = sys._getframe(2), 2  # stacklevel 2: the caller of the function that warns
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    return frame, level


def warn_once_per_call_site(message: str, category: type[Warning] = InputWarning) -> None:
    """Warn once for each line outside ca2sis_lib (and torch) that led here; later calls from that
    line stay silent, whatever their message (which may name different values)."""
    frame, level = outside_caller()
    site = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("", 0)
    with _WARNED_LOCK:
        if site in _WARNED_AT:
            return
        _WARNED_AT.add(site)
    warnings.warn(message, category, stacklevel=level)


def _shape(x: Tensor) -> tuple[int, ...]:
    return tuple(x.shape)


def require_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def model_placement(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of a model's parameters (where inputs are moved and cast)."""
    p = next(model.parameters())
    return p.device, p.dtype


# --------------------------------------------------------------------------------------------
# image sizes: the one rule of every family (CA²-SIS, SEAN-style, SPADE), their configs and hints
# --------------------------------------------------------------------------------------------
# One rule for every family: the comparisons pair the families at one size, every decoder halves
# the size five or six times, and nothing above 512² has been run (CA²-SIS's self-attention over
# (S/4)² tokens alone would need 16x the memory of 256² at 1024²).
SIZE_STEP, SIZE_MIN, SIZE_MAX = 64, 64, 512
SIZE_RULE = f"image_size must be a multiple of {SIZE_STEP} in [{SIZE_MIN}, {SIZE_MAX}]"


def image_size_error(size: object) -> str | None:
    """The refusal of an ``image_size`` that breaks :data:`SIZE_RULE`, or None."""
    if isinstance(size, bool) or not isinstance(size, int) or size % SIZE_STEP or not SIZE_MIN <= size <= SIZE_MAX:
        return f"{SIZE_RULE}, got {size!r}"
    return None


def check_image_size(size: object) -> None:
    """Raise :class:`InputError` unless ``size`` meets :data:`SIZE_RULE` (every model config calls this)."""
    message = image_size_error(size)
    if message:
        raise InputError(message)


def supported_sizes_hint(height: int, width: int) -> str:
    """A hint naming image sizes that meet :data:`SIZE_RULE` near H×W."""
    side = max(height, width)
    below = min(max(SIZE_MIN, side // SIZE_STEP * SIZE_STEP), SIZE_MAX)
    above = min(below + SIZE_STEP, SIZE_MAX) if side > below else below
    sizes = sorted({below, above})
    options = " or ".join(str(s) for s in sizes)
    return f"resize the data to a square {options}² ({SIZE_RULE}) and build the model with that image_size"


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------
def image_range_error(low: float, high: float, name: str = "image") -> str | None:
    """The refusal for an image whose values span [low, high], or None: only what is certainly
    wrong (non-finite values, values beyond ±:data:`IMAGE_LIMIT`) is refused."""
    if not (abs(low) < float("inf") and abs(high) < float("inf")):  # NaN fails both comparisons
        return (f"{name} holds non-finite values (NaN or inf): one bad pixel turns the whole output to "
                "NaN; fix the data or replace them (torch.nan_to_num)")
    if low >= 0 and high > IMAGE_LIMIT:
        return (f"{name} values lie in [{low:.3g}, {high:.3g}]: looks like [0, 255]; the models take "
                "[-1, 1]: convert with image.float() / 127.5 - 1")
    if low < -IMAGE_LIMIT or high > IMAGE_LIMIT:
        return (f"{name} values lie in [{low:.3g}, {high:.3g}], beyond what resizing a [-1, 1] image gives "
                f"(±{IMAGE_LIMIT:g}); the models take images in [-1, 1] (normalise with "
                "(x - min) / (max - min) * 2 - 1)")
    return None


def image_range_warning(low: float, high: float, name: str = "image") -> str | None:
    """The warning for values that may be [0, 1] data (all >= 0, spanning more than a quarter of
    [-1, 1]) but may be a bright [-1, 1] image, or None."""
    if low >= 0 and high - low > 0.5:
        return (f"{name} values lie in [{low:.3g}, {high:.3g}], all >= 0: if this is [0, 1] data, convert it with "
                "image * 2 - 1 (the models take [-1, 1]); a bright [-1, 1] image is fine as it is. Shown once "
                "for this line")
    return None


def check_image_values(image: Tensor, name: str = "image") -> None:
    """Floating point, finite, within ±IMAGE_LIMIT (a warning when it may be [0, 1] data): one fused
    reduction and one host sync."""
    if not image.is_floating_point():
        raise InputError(f"{name} has integer dtype {image.dtype}; the models take floating-point images in "
                         "[-1, 1]: convert with image.float() / 127.5 - 1")
    if not _has_values(image) or image.numel() == 0:
        return
    low, high = torch.stack(torch.aminmax(image.detach())).float().tolist()  # NaN propagates into both
    message = image_range_error(low, high, name)
    if message:
        raise InputError(message)
    doubt = image_range_warning(low, high, name)
    if doubt:
        warn_once_per_call_site(doubt)


def check_image_shape(image: Tensor, size: int, name: str = "image") -> None:
    require_tensor(image, name)
    if image.dim() != 4 or image.shape[1] != 3:
        raise InputError(f"{name} must have shape (B, 3, H, W), got {_shape(image)}")
    if image.shape[0] == 0:
        raise InputError(f"{name} is an empty batch (B = 0)")
    if _shape(image)[-2:] != (size, size):
        raise InputError(f"{name} size {_shape(image)[-2:]} does not fit this model, which draws ({size}, {size}) "
                         f"images: {supported_sizes_hint(*image.shape[-2:])}")


def prepare_image(image: Tensor, size: int, model: nn.Module, name: str = "image") -> Tensor:
    """Check an image (B, 3, S, S) against the contract; return it on the model's device and dtype."""
    check_image_shape(image, size, name)
    check_image_values(image, name)
    device, dtype = model_placement(model)
    return image.to(device=device, dtype=dtype)


# --------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------
def check_mask_size(mask: Tensor, size: int, name: str = "mask") -> None:
    require_tensor(mask, name)
    if mask.dim() not in (3, 4):
        raise InputError(f"{name} must be labels (B, H, W) or one-hot (B, K, H, W), got {_shape(mask)}")
    if mask.shape[0] == 0:
        raise InputError(f"{name} is an empty batch (B = 0)")
    if _shape(mask)[-2:] != (size, size):
        if mask.shape[-1] in (3, 4) and _shape(mask)[-3:-1] == (size, size):  # (…, H, W, 3): pixels last
            raise InputError(f"{name} {_shape(mask)} looks like a colour image with its channels last "
                             f"(…, H, W, {mask.shape[-1]}), not class ids or a one-hot mask. {colour_mask_fix()}")
        raise InputError(f"{name} is {_shape(mask)[-2:]} but the model draws ({size}, {size}) images; they must "
                         "match (resize the mask with nearest-neighbour interpolation)")


def check_batch(a: Tensor, b: Tensor, what_a: str = "image", what_b: str = "mask") -> None:
    if a.shape[0] != b.shape[0]:
        raise InputError(f"{what_a} batch {a.shape[0]} != {what_b} batch {b.shape[0]}: pair every {what_a} with "
                         f"one {what_b}")


def check_image(image: Tensor, mask: Tensor, size: int) -> None:
    """Shapes of an (image, mask) pair: image (B, 3, S, S), mask of the same batch and size."""
    check_image_shape(image, size)
    check_mask_size(mask, size)
    check_batch(image, mask)


def label_range_error(labels: Tensor | np.ndarray, num_classes: int, ignore_index: int | None = None) -> str | None:
    """The one label rule, for a tensor (the models) or a numpy array (the data checker): class ids are
    whole numbers in [0, K), or the ignore label; never clipped. The refusal, or None."""
    if labels.dtype in (torch.bool, np.bool_):
        return "label map is boolean; pass integer class ids (0 and 1 for two classes: labels.long())"
    if isinstance(labels, Tensor):
        if not _has_values(labels):
            return None
        whole = not labels.is_floating_point() or torch.equal(labels, labels.round())
        labels = labels if labels.is_floating_point() else labels.long()  # uint8 cannot hold ignore_index=-1
    else:
        whole = labels.dtype.kind != "f" or bool(np.array_equal(labels, np.round(labels)))
        labels = labels if labels.dtype.kind == "f" else labels.astype(np.int64, copy=False)
    if not whole:
        return "label map holds non-integer values (NaN or fractions); pass integer class ids, never interpolated"
    valid = (labels >= 0) & (labels < num_classes)  # the same operators on a tensor and an array
    if ignore_index is not None:
        valid |= labels == ignore_index
    if bool(valid.all()):
        return None
    bad = labels[~valid]
    values = [int(v) for v in (torch.unique(bad) if isinstance(bad, Tensor) else np.unique(bad)).tolist()]
    shown = ", ".join(str(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")
    ignore = "no ignore label is set" if ignore_index is None else f"the ignore label is {ignore_index}"
    need = f" (these values need at least {values[-1] + 1})" if values[-1] >= num_classes else ""
    return (f"label values [{shown}] ({bad.numel() if isinstance(bad, Tensor) else bad.size} pixels) are outside "
            f"[0, {num_classes}) and {ignore}. Fix: check num_classes{need}, remap the ids, or set "
            "ignore_index=<value> if such pixels mean 'unlabelled'. Values are never clipped.")


def check_labels(labels: Tensor, num_classes: int, ignore_index: int | None = None) -> None:
    """Integer labels (B, H, W) meeting the one label rule (:func:`label_range_error`)."""
    if labels.dim() != 3:
        raise InputError(f"label map must have shape (B, H, W), got {_shape(labels)}")
    message = label_range_error(labels, num_classes, ignore_index)
    if message:
        raise InputError(message)


def colour_mask_error(mask: Tensor, num_classes: int, allow_empty_pixels: bool = False, exclusive: bool = True,
                      name: str = "mask") -> str | None:
    """The message for a 3-channel ``mask`` that is not one-hot (an RGB colour mask), or None.

    Not one-hot means values other than 0 and 1, or per-pixel channel sums other than 1 (above 1
    when ``exclusive``, below 1 unless ``allow_empty_pixels``). Costs two reductions: call it only
    once a one-hot check has failed."""
    if mask.dim() != 4 or mask.shape[1] != 3 or not _has_values(mask) or mask.numel() == 0:
        return None
    values = mask.detach().float()
    low, high = torch.stack(torch.aminmax(values)).tolist()
    sums = values.sum(dim=1)
    sum_low, sum_high = torch.stack(torch.aminmax(sums)).tolist()
    binary = bool(torch.all((values == 0) | (values == 1)))
    if binary and not ((exclusive and sum_high > 1) or (not allow_empty_pixels and sum_low < 1)):
        return None  # a real 3-class one-hot mask
    return (f"{name} looks like a colour image (an RGB colour mask), not a one-hot mask: it has 3 channels with "
            f"values in [{low:.3g}, {high:.3g}] and per-pixel channel sums in [{sum_low:.3g}, {sum_high:.3g}], where a "
            f"one-hot mask (B, {num_classes}, H, W) holds 0s and 1s with one class per pixel. "
            f"{colour_mask_fix(num_classes, ', e.g. mask[i].permute(1, 2, 0).numpy()')}")


def colour_mask_fix(num_classes: int | None = None, example: str = "") -> str:
    """How to turn a colour mask into class ids (``example``: how to get one (H, W, 3) array from the input)."""
    fix = ("Fix: convert the colours to class ids with ca2sis_lib.data.preflight.decode_color_label(rgb, label_colors, "
           f"path) (rgb: one mask as an (H, W, 3) uint8 array{example}; label_colors: the dataset's palette, colour "
           "k = class k; path: a name for its messages), then pass the labels (B, H, W)")
    if num_classes is not None:
        fix += f" or one-hot them with ca2sis_lib.masks.labels_to_one_hot(labels, {num_classes})"
    return fix


def check_one_hot(mask: Tensor, num_classes: int, allow_empty_pixels: bool = False, exclusive: bool = True,
                  name: str = "mask") -> None:
    """A one-hot (B, K, H, W) of exact 0s and 1s with K channels; one class per pixel when ``exclusive``.

    A 3-channel mask that is not one-hot is reported as a colour image, with the conversion to class ids."""
    if mask.dim() != 4:
        raise InputError(f"one-hot {name} must have shape (B, K, H, W), got {_shape(mask)}")
    if mask.shape[1] != num_classes:
        raise InputError(colour_mask_error(mask, num_classes, allow_empty_pixels, exclusive, name) or (
            f"{name} has {mask.shape[1]} class channels but the model expects {num_classes}; "
            "build the model with the dataset's class count (config.num_classes)."
        ))
    if not _has_values(mask):
        return
    if mask.dtype != torch.bool and not torch.all((mask == 0) | (mask == 1)):
        raise InputError(colour_mask_error(mask, num_classes, allow_empty_pixels, exclusive, name) or (
            f"one-hot {name} holds values other than 0 and 1 (a soft or resized mask?); pass integer "
            "labels, or resize masks with nearest-neighbour interpolation"))
    if not exclusive:
        return
    per_pixel = mask.sum(dim=1)
    low, high = torch.stack(torch.aminmax(per_pixel)).tolist()
    if high > 1 or (not allow_empty_pixels and low < 1):
        raise InputError(colour_mask_error(mask, num_classes, allow_empty_pixels, exclusive, name) or (
            f"{name} is not one-hot: some pixels belong to {int(high)} classes and some to {int(low)}; every "
            "pixel must have exactly one class. For hand-composed masks use model.embed_mask/decode."
        ))


# --------------------------------------------------------------------------------------------
# codes: styles, tokens, noise
# --------------------------------------------------------------------------------------------
def check_finite(x: Tensor, name: str) -> None:
    if _has_values(x) and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise InputError(f"{name} holds non-finite values (NaN or inf)")


def prepare_code(x: Tensor, expected: tuple[int | None, ...], name: str, model: nn.Module, meaning: str) -> Tensor:
    """Check a code tensor's shape (None = any batch) and values; return it on the model's device and dtype."""
    require_tensor(x, name)
    shape = _shape(x)
    if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
        want = ", ".join("B" if e is None else str(e) for e in expected)
        raise InputError(f"{name} must have shape ({want}) for this model ({meaning}), got {shape}")
    if shape[0] == 0:
        raise InputError(f"{name} is an empty batch (B = 0)")
    if not x.is_floating_point():
        raise InputError(f"{name} must be floating point, got {x.dtype}")
    check_finite(x, name)
    device, dtype = model_placement(model)
    return x.to(device=device, dtype=dtype)


def check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_samples(model: nn.Module, samples: object, minimum: int, what: str) -> None:
    """Samples for a visualiser: a sequence of at least ``minimum`` dicts {"image" (3, S, S) in [-1, 1],
    "label" (S, S) class ids}, each meeting the model's input contract."""
    count = len(samples) if hasattr(samples, "__len__") else -1  # type: ignore[arg-type]
    if count < minimum:
        got = f"{count}" if count >= 0 else repr(samples)
        raise InputError(f"{what} needs at least {minimum} sample(s) in a sequence, got {got}")
    for i in range(count):
        item = samples[i]  # type: ignore[index]
        if not isinstance(item, dict) or not isinstance(item.get("image"), Tensor) or not isinstance(
                item.get("label"), Tensor):
            raise InputError(f"sample {i} must be a dict with tensors 'image' (3, H, W) and 'label' (H, W), e.g. a "
                             "ToyFaces item")
        try:
            model.prepare_inputs(item["image"].unsqueeze(0), item["label"].unsqueeze(0))  # type: ignore[operator]
        except InputError as error:
            raise InputError(f"sample {i}: {error}") from None


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
def unreadable_checkpoint_reason(error: BaseException) -> str | None:
    """Why ``torch.load(path, weights_only=True)`` could not read a file, in a few words, or None when
    ``error`` is not about what the file holds (e.g. CUDA tensors on a machine without CUDA).

    Replaces torch's own message, whose advice to retry with unsafe loading is never the fix here."""
    if isinstance(error, EOFError):
        return "the file is empty or cut off"
    text = str(error)
    if isinstance(error, pickle.UnpicklingError):
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if found:
            return (f"it holds pickled Python objects ({found[1]}), not only tensors, numbers and strings, and "
                    "ca2sis_lib never unpickles code")
        return "torch.load cannot read it: it was not written by torch.save (a text, image or other file?)"
    if isinstance(error, RuntimeError) and any(
            marker in text for marker in ("PytorchStreamReader", "inline_container", "zip archive")):
        line = re.sub(r"^\[enforce fail[^\]]*\]\s*\.?\s*", "", text.strip().splitlines()[0])
        first = re.split(r"\.\s", line)[0][:160]  # torch's first sentence
        return ("torch.load cannot read it as a torch.save archive (a cut-off download or copy, or a zip file of "
                f"another kind): {first}")
    return None
