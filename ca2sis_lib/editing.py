"""Style and shape editing (docs/architecture.md#editing-operations). Every operation is zero-shot: training is pure
reconstruction.

CA²-SIS keeps *what* (one style code per class) and *where* (one shape token per class) in two
separate tensors, so every edit is a swap or a blend of rows:

    styles (B, K, D)   rows = classes, background included      -> style transfer, interpolation
    tokens (B, K', L)  rows = classes, background excluded (K'=K-1) -> shape edits without a mask

The SPADE family has per-class styles too (SEAN), but its layout *is* the mask, so its shape edits
need a composed mask: ``compose_masks`` builds one with a stated overlap rule.

All functions take a batch (A[i] is edited with B[i]), run under ``torch.no_grad`` on the model's
device, accept integer labels or one-hot masks, and return images (B, 3, H, W) in [-1, 1]. Inputs
follow the contract of :mod:`ca2sis_lib.contract` (A and B must have one batch size): a bad input
raises :class:`~ca2sis_lib.contract.InputError`. Each input is checked once, at the door of the
public function; inside, the operations run the model's parts (style encoder, mask embedder,
generator or decoder) on the checked tensors, never a public function that would check them again.

``classes`` are class *ids*: a sequence of ints such as ``[8]``, or a single int for one class
(``8`` means ``[8]``). Names are refused with the way to look an id up:
``dataset.class_names.index("hair")`` (``CLASS_NAMES.index("hair")`` in notebooks 04 and 05,
``TOY_CLASSES.index("hair")`` for the toy faces).
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .contract import InputError, check_batch, check_positive_int
from .masks import classes_present
from .models.factory import random_mapping_reason
from .models.interface import SemanticGenerator, is_cross_attention, model_device

Classes = int | Sequence[int]  # class ids; a single int is one class (see _class_ids)


# -- the door: every input checked once -----------------------------------------------------------
def _one_hot(model: SemanticGenerator, mask: Tensor) -> Tensor:
    """The one check of a mask: -> validated one-hot (B, K, H, W) on the model's device and dtype."""
    return model.prepare_mask(mask).to(model_device(model))


def _inputs(model: SemanticGenerator, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The one check of an (image, mask) pair: -> image and one-hot on the model's device and dtype."""
    return model.prepare_inputs(image, mask)  # type: ignore[attr-defined]


def _same_batch(a: Tensor, b: Tensor) -> None:
    """A's and B's batches must match (a silent broadcast otherwise)."""
    check_batch(a, b, "mask A", "mask B")


# -- inside: the model's parts on checked tensors (no second check) ---------------------------------
def _styles(model: SemanticGenerator, image: Tensor, one_hot: Tensor) -> Tensor:
    """Checked image (B, 3, H, W) and one-hot -> styles (B, K, D): ``model.encode_style`` without its check."""
    return model.style_encoder(image, one_hot)  # type: ignore[attr-defined]


def _check_alphas(alphas: Sequence[float]) -> list[float]:
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise InputError("alphas is empty: give at least one blend weight (e.g. [0.0, 0.5, 1.0])")
    if any(a != a or abs(a) == float("inf") for a in alphas):
        raise InputError(f"alphas must be finite numbers, got {alphas}")
    return alphas


def _name_lookup_hint(name: str, num_classes: int | None) -> str:
    """How to turn a class name into an id, quoting the id where a known class list of this size has it."""
    from .data.celebamask import CELEBAMASK_CLASSES
    from .data.toy_scene import TOY_CLASSES

    known = [(label, names) for label, names in (("the toy faces (TOY_CLASSES)", TOY_CLASSES),
                                                 ("CelebAMask-HQ (CELEBAMASK_CLASSES)", CELEBAMASK_CLASSES))
             if name in names and num_classes in (None, len(names))]
    example = repr(name) if known or name in TOY_CLASSES or name in CELEBAMASK_CLASSES else "name"
    hint = (f"look the id up in the dataset's class names: [dataset.class_names.index({example})] "
            f"([CLASS_NAMES.index({example})] in notebooks 04 and 05)")
    for label, names in known:
        hint += f"; in {label} {name!r} is class {names.index(name)}"
    return hint


def _class_ids(classes: object, num_classes: int | None, where: str = "this model has") -> list[int]:
    """Validate an edit's ``classes`` and return them as a list of ints.

    ``classes`` are class ids: a sequence of ints (``[3, 8]``; numpy or torch integers work too) or a
    single int, taken as a one-class list (``8`` means ``[8]``). Names, floats and other types raise
    :class:`InputError` saying how to get an id from a name; ids outside ``[0, num_classes)`` (only
    negative ones when ``num_classes`` is None) raise one naming the valid range; so does an empty list.
    """
    if isinstance(classes, Tensor) and classes.dim() == 0:
        classes = classes.reshape(1)
    if isinstance(classes, (str, bytes)):
        items: list[object] = [classes]
    elif isinstance(classes, Iterable):
        items = list(classes)
    else:
        items = [classes]  # one class, or a wrong type refused below
    ids = []
    for item in items:
        if isinstance(item, str):
            raise InputError(f"classes are given as class ids (integers), not names: got {item!r}; "
                             f"{_name_lookup_hint(item, num_classes)}")
        try:
            if isinstance(item, bool):
                raise TypeError
            ids.append(operator.index(item))  # ints, numpy and torch integers; not floats
        except TypeError:
            raise InputError(f"classes must be class ids (integers), or one int for one class; got {item!r} "
                             f"({type(item).__name__}) in {classes!r}. Pass e.g. [8] or 8; to use a class name, "
                             f"{_name_lookup_hint('hair', num_classes)}") from None
    if not ids:
        raise InputError("no classes given to edit: pass at least one class id, e.g. [8] (or 8)")
    bad = [c for c in ids if c < 0 or (num_classes is not None and c >= num_classes)]
    if bad:
        valid = "class ids are 0 or more" if num_classes is None else (
            f"{where} {num_classes} classes, so valid ids are 0 to {num_classes - 1}")
        raise InputError(f"class ids {bad} are out of range: {valid}")
    return ids


def _check_classes(model: SemanticGenerator, classes: object, reference: Tensor | None = None) -> list[int]:
    classes = _class_ids(classes, model.config.num_classes)
    if reference is not None:  # a class absent from the reference has no style or shape to give
        present = classes_present(reference)  # (B, K)
        for c in classes:
            missing = (~present[:, c]).nonzero().flatten().tolist()
            if missing:
                raise InputError(f"class {c} is absent from the reference mask of batch item(s) {missing}")
    return classes


def _decode(model: SemanticGenerator, layout: Tensor, styles: Tensor) -> Tensor:
    """CA²-SIS decodes from tokens; the SPADE family from a (composed) one-hot mask: ``model.decode``
    without its check."""
    if is_cross_attention(model):
        return model.generator(layout, styles)[0]  # type: ignore[attr-defined]
    return model.decoder(layout, styles)  # type: ignore[attr-defined]


def _layout(model: SemanticGenerator, one_hot: Tensor) -> Tensor:
    """Checked one-hot (B, K, H, W) -> CA²-SIS's tokens (B, K', L) (``model.embed_mask`` without its
    check), or the one-hot itself for the SPADE family."""
    return model.mask_embedder(one_hot) if is_cross_attention(model) else one_hot  # type: ignore[attr-defined]


def _token_rows(model: SemanticGenerator, classes: Sequence[int]) -> list[int]:
    """Class index -> row of the token tensor (the background has no token when excluded)."""
    shift = int(model.config.exclude_background)
    if shift and 0 in classes:
        raise InputError("the background has no mask token in this model (exclude_background=True)")
    return [c - shift for c in classes]


@torch.no_grad()
def reconstruct(model: SemanticGenerator, image: Tensor, mask: Tensor) -> Tensor:
    """``image`` (B, 3, H, W) in [-1, 1] redrawn from its own styles and layout (the parts composed)."""
    image, one_hot = _inputs(model, image, mask)
    return _decode(model, _layout(model, one_hot), _styles(model, image, one_hot))


@torch.no_grad()
def transfer_style(model: SemanticGenerator, image_a: Tensor, mask_a: Tensor, image_b: Tensor, mask_b: Tensor,
                   classes: Classes | None = None) -> Tensor:
    """A's layout with the style codes of ``classes`` taken from B (all classes: global transfer).

    ``classes``: class ids such as ``[8]``, or one int for one class (``8``); names are refused
    (look ids up with ``dataset.class_names.index("hair")``)."""
    (image_a, a), (image_b, b) = _inputs(model, image_a, mask_a), _inputs(model, image_b, mask_b)
    _same_batch(a, b)
    if classes is not None:
        classes = _check_classes(model, classes, reference=b)  # before any forward pass
    styles_a, styles_b = _styles(model, image_a, a), _styles(model, image_b, b)
    if classes is None:
        styles = styles_b  # global style transfer: every code from B
    else:
        styles = styles_a.clone()
        styles[:, classes] = styles_b[:, classes]
    return _decode(model, _layout(model, a), styles)


@torch.no_grad()
def interpolate_style(model: SemanticGenerator, image_a: Tensor, mask_a: Tensor, image_b: Tensor, mask_b: Tensor,
                      alphas: Sequence[float], classes: Classes | None = None) -> Tensor:
    """Per-class blend α·s_A + (1-α)·s_B for each α; returns (len(alphas), B, 3, H, W).

    ``classes``: class ids, or one int for one class (None: every class)."""
    (image_a, a), (image_b, b) = _inputs(model, image_a, mask_a), _inputs(model, image_b, mask_b)
    _same_batch(a, b)
    rows = list(range(model.config.num_classes)) if classes is None else _check_classes(model, classes, b)
    alphas = _check_alphas(alphas)
    styles_a, styles_b = _styles(model, image_a, a), _styles(model, image_b, b)
    layout = _layout(model, a)
    frames = []
    for alpha in alphas:
        styles = styles_a.clone()
        styles[:, rows] = alpha * styles_a[:, rows] + (1 - alpha) * styles_b[:, rows]
        frames.append(_decode(model, layout, styles))
    return torch.stack(frames)


def swap_mask_channels(mask_a: Tensor, mask_b: Tensor, classes: Classes) -> Tensor:
    """A's one-hot mask with channels ``classes`` taken from B's (docs/architecture.md#editing-operations). Not
    re-exclusivised:
    the result may overlap or leave holes, and CA²-SIS's embedder resolves that itself."""
    if mask_a.shape != mask_b.shape or mask_a.dim() != 4:
        raise InputError(f"swap_mask_channels needs two one-hot masks of one shape (B, K, H, W), got "
                         f"{tuple(mask_a.shape)} and {tuple(mask_b.shape)}")
    return _swap_channels(mask_a, mask_b, _class_ids(classes, mask_a.shape[1], where="the masks have"))


def _swap_channels(mask_a: Tensor, mask_b: Tensor, ids: list[int]) -> Tensor:
    """:func:`swap_mask_channels` on checked one-hot masks and class ids."""
    swapped = mask_a.clone()
    swapped[:, ids] = mask_b[:, ids]
    return swapped


def compose_masks(labels_a: Tensor, labels_b: Tensor, classes: Classes, max_iterations: int = 256) -> Tensor:
    """A hand-made-style mask for the SPADE family: label maps (B, H, W) -> (B, H, W).

    Overlap rule: B's pixels of ``classes`` are painted over A. Pixels where A had one of
    ``classes`` and B has not become holes, filled by the nearest remaining class of A (grown one
    pixel at a time, 4-neighbourhood, lowest class id winning ties).
    """
    if labels_a.shape != labels_b.shape or labels_a.dim() != 3 or labels_a.is_floating_point():
        raise InputError(f"compose_masks needs two integer label maps of one shape (B, H, W), got "
                         f"{tuple(labels_a.shape)} {labels_a.dtype} and {tuple(labels_b.shape)} {labels_b.dtype}")
    return _compose(labels_a, labels_b, _class_ids(classes, None), max_iterations)


def _compose(labels_a: Tensor, labels_b: Tensor, ids: list[int], max_iterations: int = 256) -> Tensor:
    """:func:`compose_masks` on checked label maps and class ids."""
    classes_t = torch.tensor(ids, device=labels_a.device, dtype=torch.long)
    out = labels_a.clone()
    hole = torch.isin(labels_a, classes_t)
    out[hole] = -1
    from_b = torch.isin(labels_b, classes_t)
    out[from_b] = labels_b[from_b]
    for _ in range(max_iterations):
        holes = out < 0
        if not holes.any():
            break
        big = torch.iinfo(out.dtype).max
        filled = torch.where(out < 0, torch.full_like(out, big), out).unsqueeze(1).float()
        neighbours = -F.max_pool2d(-F.pad(filled, (1, 1, 1, 1), value=big), 3, stride=1)  # min over 3x3
        neighbours = neighbours.squeeze(1).long()
        grow = holes & (neighbours < big)
        out[grow] = neighbours[grow]
    if (out < 0).any():
        raise InputError("compose_masks could not fill every hole: A has no class left outside the edited ones")
    return out


@torch.no_grad()
def transfer_shape_with_mask(model: SemanticGenerator, image_a: Tensor, mask_a: Tensor, mask_b: Tensor,
                             classes: Classes) -> Tensor:
    """Shape transfer through the mask: CA²-SIS re-embeds A's mask with channels swapped from B;
    the SPADE family gets the composed mask of ``compose_masks``. Styles stay A's."""
    image_a, a = _inputs(model, image_a, mask_a)
    b = _one_hot(model, mask_b)
    _same_batch(a, b)
    classes = _check_classes(model, classes, reference=b)
    styles = _styles(model, image_a, a)  # encoded with A's original mask
    if is_cross_attention(model):
        return _decode(model, _layout(model, _swap_channels(a, b, classes)), styles)
    composed = _compose(a.argmax(1), b.argmax(1), classes)  # (B, H, W), every id in [0, K)
    one_hot = F.one_hot(composed, model.config.num_classes).permute(0, 3, 1, 2).to(a.dtype)  # (B, K, H, W)
    return _decode(model, one_hot, styles)


@torch.no_grad()
def transfer_shape_without_mask(model: SemanticGenerator, image_a: Tensor, mask_a: Tensor, image_b: Tensor,
                                mask_b: Tensor, classes: Classes, with_style: bool = True) -> Tensor:
    """CA²-SIS only: replace A's *mask tokens* of ``classes`` by B's (and their style codes too when
    ``with_style``) — the shape comes from B and no mask is ever composed (docs/architecture.md#editing-operations)."""
    if not is_cross_attention(model):
        raise InputError("shape editing without a mask needs mask tokens: only CA²-SIS has them; "
                         "for the SPADE family use transfer_shape_with_mask (a composed mask)")
    (image_a, a), (image_b, b) = _inputs(model, image_a, mask_a), _inputs(model, image_b, mask_b)
    _same_batch(a, b)
    classes = _check_classes(model, classes, reference=b)
    tokens_a, tokens_b = _layout(model, a), _layout(model, b)
    rows = _token_rows(model, classes)
    tokens_a[:, rows] = tokens_b[:, rows]
    styles = _styles(model, image_a, a)
    if with_style:
        styles[:, classes] = _styles(model, image_b, b)[:, classes]
    return _decode(model, tokens_a, styles)


@torch.no_grad()
def interpolate_shape(model: SemanticGenerator, image_a: Tensor, mask_a: Tensor, mask_b: Tensor, classes: Classes,
                      alphas: Sequence[float]) -> Tensor:
    """CA²-SIS: tokens α·t_A + (1-α)·t_A_sw, where t_A_sw embeds A's mask with ``classes`` swapped
    from B; styles stay A's. Returns (len(alphas), B, 3, H, W)."""
    if not is_cross_attention(model):
        raise InputError("shape interpolation blends mask tokens: only CA²-SIS has them")
    image_a, a = _inputs(model, image_a, mask_a)
    b = _one_hot(model, mask_b)
    _same_batch(a, b)
    classes = _check_classes(model, classes, reference=b)
    alphas = _check_alphas(alphas)
    tokens_a, tokens_sw = _layout(model, a), _layout(model, _swap_channels(a, b, classes))
    styles = _styles(model, image_a, a)
    return torch.stack([_decode(model, alpha * tokens_a + (1 - alpha) * tokens_sw, styles) for alpha in alphas])


@torch.no_grad()
def generate_from_noise(model: SemanticGenerator, mask: Tensor, num_samples: int = 4, seed: int = 0) -> Tensor:
    """Multimodal generation (docs/architecture.md#mapping-network): style codes from the mapping network for one
    layout.
    Returns (num_samples, B, 3, H, W). Meaningful after the mapping stage of training."""
    if not is_cross_attention(model):
        raise InputError("noise-driven generation needs the CA²-SIS mapping network")
    check_positive_int(num_samples, "num_samples")
    if random_mapping_reason(model):
        warnings.warn(f"these samples come from a RANDOM mapping network, not a trained one: "
                      f"{random_mapping_reason(model)}", stacklevel=2)
    one_hot = _one_hot(model, mask)
    present = classes_present(one_hot)  # (B, K)
    tokens = _layout(model, one_hot)
    g = torch.Generator(device="cpu").manual_seed(seed)
    frames = []
    for _ in range(num_samples):
        z = torch.randn(one_hot.shape[0], model.config.noise_dim, generator=g).to(one_hot)  # (B, noise_dim)
        frames.append(_decode(model, tokens, model.mapping(z, present)))  # styles_from_noise without its check
    return torch.stack(frames)
