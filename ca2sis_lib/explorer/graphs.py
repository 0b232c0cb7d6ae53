"""The explorer's graphs: each shipped model cut where the course cuts it, so an edit re-runs only
the part it changes (docs/architecture.md#editing-operations).

    CA²-SIS   style_encoder   image (1, 3, H, W), one_hot (1, K, H, W) -> styles (1, K, D)
              mask_embedder   one_hot (1, K, H, W)                     -> tokens (1, K', L)
              decoder         tokens, styles -> image (1, 3, H, W) and, per cross-attention layer,
                              its pre-softmax logits (1, heads, K, h, w), named as the layer ("cross@16")
    SEAN      style_encoder   as above (its own weights)
              decoder         one_hot, styles -> image: the mask enters every layer (SPADE family)

Painting the map re-runs the mask embedder and the decoder; a style edit only the decoder; picking
another face the style encoder once. Every graph takes batch 1 and a float one-hot mask (a painted
or composed mask is a one-hot the page builds), exactly the tensors the library's public methods
take after their input checks (``encode_style``, ``embed_mask``, ``decode``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..models.interface import is_cross_attention


class StyleEncoderGraph(nn.Module):
    """image (1, 3, H, W) in [-1, 1], one_hot (1, K, H, W) -> styles (1, K, D): ``model.encode_style``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.style_encoder = model.style_encoder

    def forward(self, image: Tensor, one_hot: Tensor) -> Tensor:
        return self.style_encoder(image, one_hot)


class MaskEmbedderGraph(nn.Module):
    """one_hot (1, K, H, W) -> shape tokens (1, K', L): ``model.embed_mask``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.mask_embedder = model.mask_embedder

    def forward(self, one_hot: Tensor) -> Tensor:
        return self.mask_embedder(one_hot)


class CrossAttentionDecoderGraph(nn.Module):
    """tokens (1, K', L), styles (1, K, D) -> image (1, 3, H, W), logits of every cross-attention layer."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.generator = model.generator

    def forward(self, tokens: Tensor, styles: Tensor) -> tuple[Tensor, ...]:
        image, logits = self.generator(tokens, styles)  # logits: [(1, heads, K, h, w)] coarse to fine
        return (image, *logits)


class SEANDecoderGraph(nn.Module):
    """one_hot (1, K, H, W), styles (1, K, D) -> image (1, 3, H, W): SEAN's SPADE skeleton."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(self, one_hot: Tensor, styles: Tensor) -> Tensor:
        return self.decoder(one_hot, styles)


@dataclass(frozen=True)
class GraphSpec:
    """One graph to export: its module, the names of its inputs and outputs, and example inputs."""

    name: str  # "style_encoder", "mask_embedder" or "decoder"
    module: nn.Module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    examples: tuple[Tensor, ...]


def graph_specs(model: nn.Module, image: Tensor, one_hot: Tensor) -> list[GraphSpec]:
    """The graphs of ``model`` (CA²-SIS or SEAN), with one face (image (1, 3, H, W), one_hot (1, K, H, W))
    run through the model's own parts to give every graph a real example input."""
    with torch.no_grad():
        styles = model.style_encoder(image, one_hot)  # (1, K, D)
        specs = [GraphSpec("style_encoder", StyleEncoderGraph(model), ("image", "one_hot"), ("styles",),
                           (image, one_hot))]
        if is_cross_attention(model):
            tokens = model.mask_embedder(one_hot)  # (1, K', L)
            specs += [
                GraphSpec("mask_embedder", MaskEmbedderGraph(model), ("one_hot",), ("tokens",), (one_hot,)),
                GraphSpec("decoder", CrossAttentionDecoderGraph(model), ("tokens", "styles"),
                          ("image", *model.attention_layer_names()), (tokens, styles)),
            ]
        else:
            specs.append(GraphSpec("decoder", SEANDecoderGraph(model), ("one_hot", "styles"), ("image",),
                                   (one_hot, styles)))
    return specs
