"""The library's implementations the checks compare against — imported here and nowhere else in
this package, so a rename in the library touches one file.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..data.preflight import decode_color_label
from ..editing import transfer_shape_without_mask, transfer_style
from ..losses import attention_loss
from ..masks import labels_to_one_hot, resize_mask
from ..models import CA2SIS, CA2SISConfig, StageConfig
from ..models.attention import CrossAttention
from ..models.mask_embedder import MaskEmbedder
from ..models.spade import SPADE
from ..viz.agreement import auroc, iou

__all__ = [
    "CA2SIS", "CA2SISConfig", "CrossAttention", "MaskEmbedder", "SPADE", "StageConfig", "argmax_iou", "attention_loss",
    "auroc", "class_cross_attention", "colours_to_ids", "labels_to_one_hot", "model_shapes", "resize_mask",
    "spade_denorm", "swapped_tokens", "transfer_shape_without_mask", "transfer_style",
]


def colours_to_ids(rgb: np.ndarray, palette: list[tuple[int, int, int]]) -> np.ndarray:
    """The dataset loader's decoder (raises a ValueError naming unknown colours)."""
    return decode_color_label(rgb, palette, "exercise mask")


def spade_denorm(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """SPADE's arithmetic with γ, β given: the library layer's parameter-free BatchNorm in training mode."""
    with torch.random.fork_rng(devices=[]):  # building the layer draws its unused conv weights: not from our caller
        layer = SPADE(x.shape[1], 2, hidden=1).train()
    return layer.normalize(x) * (1 + gamma) + beta


def class_cross_attention(x: Tensor, styles: Tensor, layer: CrossAttention) -> tuple[Tensor, Tensor]:
    """The library's attn2 on pixels (B, N, C) and class codes (B, K, D): its output and softmax weights."""
    out, logits = layer(x, styles)
    return out, logits.softmax(dim=-1)


def argmax_iou(logits: Tensor, mask: Tensor) -> Tensor:
    """Per-class IoU of the head-averaged attention argmax against the nearest-resized mask, pooled
    over the batch; NaN for classes absent from the resized mask (as ``viz.agreement_table``)."""
    mean_logits = logits.float().mean(dim=1)  # (B, K, h, w)
    target = resize_mask(mask.float(), tuple(mean_logits.shape[-2:]))  # (B, K, h, w)
    valid = target.sum(dim=1) > 0  # (B, h, w)
    truth, chosen = target.argmax(dim=1)[valid], mean_logits.argmax(dim=1)[valid]
    scores = [iou((chosen == c).numpy(), (truth == c).numpy()) if bool((truth == c).any()) else float("nan")
              for c in range(mask.shape[1])]
    return torch.tensor(scores, dtype=torch.float64)


def swapped_tokens(model: CA2SIS, tokens_a: Tensor, tokens_b: Tensor, classes: list[int]) -> Tensor:
    """A's tokens with the rows of ``classes`` from B, as ``transfer_shape_without_mask`` swaps them."""
    rows = [c - int(model.config.exclude_background) for c in classes]
    tokens = tokens_a.clone()
    tokens[:, rows] = tokens_b[:, rows]
    return tokens


def model_shapes(config: CA2SISConfig, batch: int) -> dict:
    """Every tensor's shape in one forward pass of a model with this config, computed on the meta
    device (shapes only, no arithmetic: the paper-sized model costs nothing)."""
    size = config.image_size
    with torch.device("meta"), torch.no_grad():
        model = CA2SIS(config).eval()
        image, one_hot = torch.zeros(batch, 3, size, size), torch.zeros(batch, config.num_classes, size, size)
        styles, tokens = model.encode_style(image, one_hot), model.embed_mask(one_hot)
        out = model.decode(tokens, styles, return_attention=True)
    return {"one_hot": tuple(one_hot.shape), "styles": tuple(styles.shape), "tokens": tuple(tokens.shape),
            "logits": [tuple(t.shape) for t in out.attention.values()], "image": tuple(out.image.shape)}
