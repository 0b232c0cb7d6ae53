"""Edits scored against their exact answer: the toy renderer knows what every edit should give.

A toy image is ``render(layout, style)``, so for a pair of test samples (A, B) the ideal result of
an edit is one more render (``data.toy_edits``). This module runs a generator's edit and the
ideal render side by side and measures (images in [0, 1], errors averaged per sample):

* ``style_transfer_scores``: local style transfer of one class from B to A. *Error* = RMSE
  against the ideal render inside the class; *leakage* = mean absolute change outside the
  class, against the model's own reconstruction of A (an edit should leave the rest alone).
* ``light_consistency_scores``: the same edit with the *light* in view. The ideal gives the
  class B's intrinsic appearance under A's light; a method that pastes B's appearance as it was
  lit in B is closer to the render under B's light. We report both distances and the fraction
  of pairs closer to A's light ("the edit is lit like the rest of the image").
* ``shape_transfer_scores``: the shape of one class from B (B's image position), with A's style;
  mIoU of the toy parser's segmentation of the edit against the ideal layout, and PSNR against
  the ideal render.
* ``robustness_curve``: reconstruction from a corrupted mask (label flips, boundary jitter,
  spurious blobs): PSNR against the clean image and parser mIoU against the clean layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .data.toy import sample_scene, toy_batch
from .data.toy_edits import class_ids, transfer_class_style, transfer_part_shape
from .data.toy_render import label_map, render
from .data.toy_scene import ToyLayout, ToyStyle
from .editing import reconstruct, transfer_shape_with_mask, transfer_shape_without_mask, transfer_style
from .image_metrics import psnr, segmentation_scores, to_unit
from .models.interface import SemanticGenerator, model_device


@dataclass
class ToyPairs:
    """``count`` (A, B) pairs of toy samples: A = item i, B = item count + i of one split."""

    images_a: Tensor  # (N, 3, H, W) in [-1, 1]
    labels_a: Tensor  # (N, H, W)
    images_b: Tensor
    labels_b: Tensor
    scenes_a: list[tuple[ToyLayout, ToyStyle]]
    scenes_b: list[tuple[ToyLayout, ToyStyle]]

    @property
    def size(self) -> int:
        return self.images_a.shape[-1]

    def subset(self, keep: Tensor) -> ToyPairs:
        idx = keep.nonzero().flatten().tolist()
        return ToyPairs(self.images_a[idx], self.labels_a[idx], self.images_b[idx], self.labels_b[idx],
                        [self.scenes_a[i] for i in idx], [self.scenes_b[i] for i in idx])

    def has_class(self, cls: int) -> Tensor:
        """(N,) bool: ``cls`` is visible in both A and B (an edit of an absent class is undefined)."""
        has = lambda labels: (labels == cls).flatten(1).any(1)
        return has(self.labels_a) & has(self.labels_b)

    def with_class(self, cls: int) -> ToyPairs:
        """The pairs where ``cls`` is visible in both A and B."""
        return self.subset(self.has_class(cls))


def toy_pairs(count: int, size: int = 64, seed: int = 0, split: str = "test") -> ToyPairs:
    images, labels = toy_batch(2 * count, split, size, seed)
    scenes = [sample_scene(i, seed, split) for i in range(2 * count)]
    return ToyPairs(images[:count], labels[:count], images[count:], labels[count:], scenes[:count], scenes[count:])


def render_batch(scenes: Sequence[tuple[ToyLayout, ToyStyle]], size: int) -> Tensor:
    """Ideal renders (N, 3, H, W) in [-1, 1]."""
    return torch.stack([torch.from_numpy(render(layout, style, size)).permute(2, 0, 1) for layout, style in scenes]
                       ) * 2 - 1


def masked_rmse(a: Tensor, b: Tensor, region: Tensor) -> Tensor:
    """Per-sample RMSE in [0, 1] units over the pixels of ``region`` (N, H, W); NaN where it is empty."""
    sq = (to_unit(a) - to_unit(b)).pow(2).mean(1)  # (N, H, W)
    count = region.flatten(1).sum(1)
    return ((sq * region).flatten(1).sum(1) / count).sqrt().where(count > 0, torch.nan)


def masked_mean_abs(a: Tensor, b: Tensor, region: Tensor) -> Tensor:
    diff = (to_unit(a) - to_unit(b)).abs().mean(1)  # (N, H, W)
    count = region.flatten(1).sum(1)
    return ((diff * region).flatten(1).sum(1) / count).where(count > 0, torch.nan)


def _nanmean(values: Tensor) -> float:
    return float(values[~values.isnan()].mean()) if (~values.isnan()).any() else float("nan")


def _on(model: SemanticGenerator, *tensors: Tensor) -> list[Tensor]:
    device = model_device(model)
    return [t.to(device) for t in tensors]


def per_sample_iou(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """IoU of every class in every sample, (N, K); NaN where a class is in neither map.

    The per-sample view of ``segmentation_scores``: a bootstrap over pairs needs one number per pair,
    and ``nanmean(dim=1)`` of this gives each sample's mIoU over the classes it shows."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    classes = torch.arange(num_classes).view(1, -1, 1, 1)
    p, t = pred.unsqueeze(1) == classes, target.unsqueeze(1) == classes  # (N, K, H, W) each
    inter, union = (p & t).flatten(2).sum(2).float(), (p | t).flatten(2).sum(2).float()  # (N, K)
    return (inter / union.clamp_min(1)).where(union > 0, torch.nan)


def _listed(values: Tensor) -> list[float]:
    return [float(v) for v in values]


def _indices(keep: Tensor) -> list[int]:
    """(N,) bool -> the indices where it is True (a pair's id in the full ``ToyPairs``)."""
    return keep.nonzero().flatten().tolist()


def _cached(cache: dict[str, Tensor] | None, key: str, make: Callable[[], Tensor]) -> Tensor:
    """``make()``, computed once per ``cache`` (a dict the caller keeps for one model and one ToyPairs)."""
    if cache is None:
        return make()
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _style_edit(model: SemanticGenerator, pairs: ToyPairs, cls: int, cache: dict[str, Tensor] | None) -> Tensor:
    """The model's transfer of ``cls`` from B to A on ``pairs.with_class(cls)`` (on the CPU)."""
    def make() -> Tensor:
        p = pairs.with_class(cls)
        a, la, b, lb = _on(model, p.images_a, p.labels_a, p.images_b, p.labels_b)
        return transfer_style(model, a, la, b, lb, classes=[cls]).cpu()
    return _cached(cache, f"style edit {cls}", make)


def _reconstruction(model: SemanticGenerator, pairs: ToyPairs, cache: dict[str, Tensor] | None) -> Tensor:
    """The model's reconstruction of every A (on the CPU)."""
    make = lambda: reconstruct(model, *_on(model, pairs.images_a, pairs.labels_a)).cpu()
    return _cached(cache, "reconstruction", make)


def style_transfer_scores(model: SemanticGenerator, pairs: ToyPairs, cls: int, per_pair: bool = False,
                          cache: dict[str, Tensor] | None = None) -> dict[str, Any]:
    """Local style transfer of class ``cls`` from B to A, against ``render(A.layout, A.style with B's cls)``.

    ``per_pair``: also return ``"per_pair"``, each score for every pair (in the order of
    ``pairs.with_class(cls)``, the same for every model) and ``"pair"``, each one's index in ``pairs``,
    for paired bootstrap intervals (the edits of one pair resampled together).
    ``cache``: a dict kept by the caller for *one model and one* ``pairs``; the reconstructions and
    edits are computed once and reused by the other scores (``light_consistency_scores``,
    ``robustness_curve``), which gives the same numbers in less time."""
    keep = pairs.has_class(cls)
    if not keep.any():
        raise ValueError(f"class {cls} is visible in no pair: choose another class or more pairs")
    edited = _style_edit(model, pairs, cls, cache)
    pairs_all, pairs = pairs, pairs.subset(keep)
    recon = _reconstruction(model, pairs_all, cache)[keep] if cache is not None else _reconstruction(model, pairs, None)
    ideal = render_batch([(lay, transfer_class_style(sty, sb, [cls])) for (lay, sty), (_, sb)
                          in zip(pairs.scenes_a, pairs.scenes_b)], pairs.size)
    inside = pairs.labels_a == cls
    each = {  # (N,) per score
        "error_in_class": masked_rmse(edited, ideal, inside),
        "reconstruction_error_in_class": masked_rmse(recon, pairs.images_a, inside),
        "unedited_error_in_class": masked_rmse(pairs.images_a, ideal, inside),  # doing nothing
        "leakage": masked_mean_abs(edited, recon, ~inside),
        "error_outside_class": masked_rmse(edited, ideal, ~inside),
    }
    scores: dict[str, Any] = {"pairs": len(edited), **{k: _nanmean(v) for k, v in each.items()}}
    if per_pair:
        scores["per_pair"] = {**{k: _listed(v) for k, v in each.items()}, "pair": _indices(keep)}
    return scores


def light_consistency_scores(model: SemanticGenerator, pairs: ToyPairs, cls: int, min_light_gap: float = 0.05,
                             per_pair: bool = False, cache: dict[str, Tensor] | None = None) -> dict[str, Any]:
    """Is the transferred class lit by A's light (right) or does it keep B's (a paste)?

    Only pairs whose two lights differ inside the class by at least ``min_light_gap`` (RMSE of the
    two ideal renders there) count: elsewhere the question has no answer. Which pairs count depends
    on the renders only, so every model is scored on the same pairs (``per_pair`` lists them in order).
    ``cache``: as in ``style_transfer_scores`` (the edit is the same one).
    """
    full, shown, pairs = pairs, pairs.has_class(cls), pairs.with_class(cls)
    ideal_a, ideal_b = [], []
    for (lay, sa), (_, sb) in zip(pairs.scenes_a, pairs.scenes_b):
        mixed = transfer_class_style(sa, sb, [cls])
        ideal_a.append((lay, mixed))
        ideal_b.append((lay, ToyStyle(classes=mixed.classes, light=sb.light)))
    ideal_a, ideal_b = render_batch(ideal_a, pairs.size), render_batch(ideal_b, pairs.size)
    inside = pairs.labels_a == cls
    keep = masked_rmse(ideal_a, ideal_b, inside) >= min_light_gap
    if not keep.any():
        raise ValueError(f"no pair has lights that differ inside class {cls} by {min_light_gap}: use more pairs")
    ideal_a, ideal_b, inside = ideal_a[keep], ideal_b[keep], inside[keep]
    if cache is None:  # only the pairs that count
        p = pairs.subset(keep)
        a, la, b, lb = _on(model, p.images_a, p.labels_a, p.images_b, p.labels_b)
        edited = transfer_style(model, a, la, b, lb, classes=[cls]).cpu()
    else:  # the edit of every pair showing the class, made once
        edited = _style_edit(model, full, cls, cache)[keep]
    to_a, to_b = masked_rmse(edited, ideal_a, inside), masked_rmse(edited, ideal_b, inside)
    lit_like_a = (to_a < to_b).float()  # (N,): 1 where the edit is closer to the render under A's light
    scores: dict[str, Any] = {"pairs": len(edited), "error_to_a_light": _nanmean(to_a),
                              "error_to_b_light": _nanmean(to_b), "fraction_lit_like_a": float(lit_like_a.mean())}
    if per_pair:
        pair = [i for i, kept in zip(_indices(shown), keep.tolist()) if kept]  # the pairs that count
        scores["per_pair"] = {"lit_like_a": _listed(lit_like_a), "error_to_a_light": _listed(to_a),
                              "error_to_b_light": _listed(to_b), "pair": pair}
    return scores


def shape_transfer_scores(model: SemanticGenerator, segmenter: nn.Module, pairs: ToyPairs, cls: int,
                          method: str = "tokens", per_pair: bool = False) -> dict[str, Any]:
    """Shape of ``cls`` from B (at B's image position), style from A.

    ``method``: "tokens" (CA²-SIS mask-token swap, no mask made), "mask" (CA²-SIS: one-hot channels
    swapped; SPADE family: ``compose_masks``). Ideal: ``transfer_part_shape(A, B, [cls], align=False)``.
    ``miou`` and ``class_iou`` pool the pixels of all pairs; ``per_pair`` adds each pair's own mIoU
    (over the classes it shows), the moved class's IoU, and the parser's scores on the ideal render
    (what a perfect edit would get: the judge's ceiling), and ``"pair"``: each one's index in ``pairs``.
    """
    shown, pairs = pairs.has_class(cls), pairs.with_class(cls)
    ideal_scenes = [(transfer_part_shape(la, lb, [cls], align=False), sa)
                    for (la, sa), (lb, _) in zip(pairs.scenes_a, pairs.scenes_b)]
    ideal_labels = torch.stack([torch.from_numpy(label_map(lay, pairs.size)) for lay, _ in ideal_scenes])
    ideal_images = render_batch(ideal_scenes, pairs.size)
    a, la, b, lb = _on(model, pairs.images_a, pairs.labels_a, pairs.images_b, pairs.labels_b)
    if method == "tokens":
        edited = transfer_shape_without_mask(model, a, la, b, lb, [cls], with_style=False)
    elif method == "mask":
        edited = transfer_shape_with_mask(model, a, la, lb, [cls])
    else:
        raise ValueError(f"method must be 'tokens' or 'mask', got {method!r}")
    edited = edited.cpu()
    predicted = segmenter.predict(edited)
    scores = segmentation_scores(predicted, ideal_labels, segmenter.num_classes)
    class_iou = scores["iou_per_class"].get(cls, float("nan"))
    result: dict[str, Any] = {"pairs": len(edited), "miou": scores["miou"], "class_iou": class_iou,
                              "psnr": float(psnr(edited, ideal_images).mean())}
    if per_pair:
        ious = per_sample_iou(predicted, ideal_labels, segmenter.num_classes)  # (N, K)
        ceiling = per_sample_iou(segmenter.predict(ideal_images), ideal_labels, segmenter.num_classes)
        result["per_pair"] = {"miou": _listed(ious.nanmean(1)), "class_iou": _listed(ious[:, cls]),
                              "ceiling_miou": _listed(ceiling.nanmean(1)),
                              "ceiling_class_iou": _listed(ceiling[:, cls]), "pair": _indices(shown)}
    return result


# -- mask corruptions ------------------------------------------------------------------------
def flip_labels(labels: Tensor, fraction: float, num_classes: int, generator: torch.Generator) -> Tensor:
    """Each pixel, with probability ``fraction``, takes a uniformly random class."""
    flip = torch.rand(labels.shape, generator=generator) < fraction
    return torch.where(flip, torch.randint(0, num_classes, labels.shape, generator=generator), labels)


def jitter_boundaries(labels: Tensor, radius: int, generator: torch.Generator) -> Tensor:
    """Each pixel takes the label of a random pixel at most ``radius`` away (replicated edges):
    flat regions are unchanged, boundaries become ragged up to ``radius`` pixels."""
    if radius <= 0:
        return labels.clone()
    n, h, w = labels.shape
    dy = torch.randint(-radius, radius + 1, (n, h, w), generator=generator)
    dx = torch.randint(-radius, radius + 1, (n, h, w), generator=generator)
    ys = (torch.arange(h).view(1, h, 1) + dy).clamp(0, h - 1)
    xs = (torch.arange(w).view(1, 1, w) + dx).clamp(0, w - 1)
    return labels[torch.arange(n).view(n, 1, 1), ys, xs]


def add_blobs(labels: Tensor, count: int, num_classes: int, generator: torch.Generator,
              radius: tuple[int, int] = (2, 5)) -> Tensor:
    """Paint ``count`` discs (radius in ``radius``) of random classes at random places."""
    out = labels.clone()
    n, h, w = labels.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    for i in range(n):
        for _ in range(count):
            cy, cx = torch.randint(0, h, (1,), generator=generator), torch.randint(0, w, (1,), generator=generator)
            r = torch.randint(radius[0], radius[1] + 1, (1,), generator=generator)
            out[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = torch.randint(0, num_classes, (1,), generator=generator)
    return out


NOISE_LEVELS: dict[str, tuple[float, ...]] = {
    "label_flips": (0.0, 0.05, 0.15, 0.3),  # fraction of pixels
    "boundary_jitter": (0, 1, 2, 3),  # pixels
    "spurious_blobs": (0, 2, 5, 10),  # discs per image
}


def corrupt(labels: Tensor, kind: str, level: float, num_classes: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "label_flips":
        return flip_labels(labels, float(level), num_classes, g)
    if kind == "boundary_jitter":
        return jitter_boundaries(labels, int(level), g)
    if kind == "spurious_blobs":
        return add_blobs(labels, int(level), num_classes, g)
    raise ValueError(f"unknown corruption {kind!r}; choose from {list(NOISE_LEVELS)}")


def robustness_curve(model: SemanticGenerator, segmenter: nn.Module, images: Tensor, labels: Tensor,
                     kinds: dict[str, Sequence[float]] | None = None, seed: int = 0,
                     on_point: Callable[[str, float], None] | None = None,
                     per_pair: bool = False, clean: Tensor | None = None) -> list[dict[str, Any]]:
    """Reconstruct from corrupted masks; one row per (kind, level) with PSNR (vs the clean image),
    parser mIoU (vs the clean layout) and the fraction of mask pixels the corruption changed.
    ``per_pair`` adds ``psnr_per_sample`` and ``miou_per_sample`` (one PSNR and one parser mIoU over the
    classes it shows per image, for paired intervals). A corruption
    that changes nothing (level 0) reuses one clean reconstruction: ``clean`` when given (the
    model's reconstruction of ``images`` from ``labels``), else the first one computed."""
    kinds = NOISE_LEVELS if kinds is None else kinds
    k = model.config.num_classes
    rows = []
    for kind, levels in kinds.items():
        for level in levels:
            noisy = corrupt(labels, kind, level, k, seed)
            unchanged = torch.equal(noisy, labels)
            if unchanged and clean is not None:
                out = clean
            else:
                out = reconstruct(model, *_on(model, images, noisy)).cpu()
                clean = out if unchanged else clean
            each, predicted = psnr(out, images), segmenter.predict(out)  # (N,), (N, H, W)
            rows.append({"kind": kind, "level": float(level),
                         "changed_pixels": float((noisy != labels).float().mean()),
                         "psnr": float(each.mean()),
                         "miou": segmentation_scores(predicted, labels, k)["miou"]})
            if per_pair:
                rows[-1]["psnr_per_sample"] = _listed(each)
                rows[-1]["miou_per_sample"] = _listed(per_sample_iou(predicted, labels, k).nanmean(1))
            if on_point is not None:
                on_point(kind, level)
    return rows


def class_index(name_or_index: int | str) -> int:
    """A toy class by name or index."""
    (cls,) = class_ids([name_or_index])
    return cls


__all__ = [
    "ToyPairs", "toy_pairs", "render_batch", "masked_rmse", "masked_mean_abs", "per_sample_iou",
    "style_transfer_scores",
    "light_consistency_scores", "shape_transfer_scores", "flip_labels", "jitter_boundaries", "add_blobs",
    "NOISE_LEVELS", "corrupt", "robustness_curve", "class_index",
]
