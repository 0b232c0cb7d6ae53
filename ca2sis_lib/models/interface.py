"""The generator interface every tool relies on: editing, evaluation, the visualisers, the trainer.

Both families, CA²-SIS (:class:`~ca2sis_lib.models.ca2sis.CA2SIS`) and the SPADE family
(:class:`~ca2sis_lib.models.sean.SEANGenerator`, :class:`~ca2sis_lib.models.spade.SPADEGenerator`),
answer the same four questions, so a tool written against :class:`SemanticGenerator` works for both:

    config                  what the model was built with (num_classes, image_size, ...)
    prepare_mask(mask)      labels (B, H, W) or one-hot (B, K, H, W) -> validated one-hot (B, K, H, W)
    encode_style(img, oh)   image (B, 3, H, W) + one-hot -> styles (B, K, D): one code per class
    decode(layout, styles)  -> an output whose ``.image`` is (B, 3, H, W) in [-1, 1]

Where they differ is the *layout* that ``decode`` takes: CA²-SIS takes shape tokens (B, K', L)
from ``embed_mask``, the SPADE family the one-hot mask itself: CA²-SIS also answers the
:class:`TokenLayoutGenerator` protocol, and :func:`is_cross_attention` is the one place that tells
them apart (by that protocol, so this interface imports no concrete model).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@runtime_checkable
class SemanticGenerator(Protocol):
    config: Any

    def prepare_mask(self, mask: Tensor) -> Tensor: ...

    def encode_style(self, image: Tensor, mask: Tensor) -> Tensor: ...

    def decode(self, layout: Tensor, styles: Tensor) -> Any: ...


@runtime_checkable
class TokenLayoutGenerator(SemanticGenerator, Protocol):
    """A generator whose layout is shape tokens: CA²-SIS, which decodes with cross-attention over classes."""

    def embed_mask(self, mask: Tensor) -> Tensor: ...


def is_cross_attention(model: nn.Module) -> bool:
    """True for CA²-SIS (layout = mask tokens, attention maps, L_att), False for the SPADE family."""
    return isinstance(model, TokenLayoutGenerator)


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (every model here keeps all of them on one device)."""
    return next(model.parameters()).device
