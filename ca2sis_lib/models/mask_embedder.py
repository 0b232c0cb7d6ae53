"""Mask embedder (docs/architecture.md#mask-embedder): the *only* way the layout enters the CA²-SIS generator.

Each class channel of the one-hot mask is resized to S×S (nearest), flattened and projected by
ONE ``Linear(S² -> L)`` shared by all classes: one shape token per class. Editing shapes without
a mask (docs/architecture.md#editing-operations) is swapping or blending these tokens.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from ..masks import resize_mask


class MaskEmbedder(nn.Module):
    def __init__(self, embed_resolution: int, token_size: int, exclude_background: bool) -> None:
        super().__init__()
        self.embed_resolution = embed_resolution
        self.exclude_background = exclude_background
        self.linear = nn.Linear(embed_resolution**2, token_size**2)  # shared by every class

    def forward(self, mask: Tensor) -> Tensor:
        """One-hot (or hand-composed) mask (B, K, H, W) -> shape tokens (B, K', L), K' = K-1 w/o bg."""
        if self.exclude_background:
            mask = mask[:, 1:]  # (B, K-1, H, W)
        s = self.embed_resolution
        mask = resize_mask(mask, (s, s))  # (B, K', S, S)
        return self.linear(rearrange(mask, "b k h w -> b k (h w)"))  # (B, K', L): absent class -> bias


class TokenToFeatures(nn.Module):
    """View every token as an L0×L0 map and mix the classes with a 1×1 conv (``reshape_conv``)."""

    def __init__(self, embed_classes: int, token_size: int, channels: int) -> None:
        super().__init__()
        self.token_size = token_size
        self.conv = nn.Conv2d(embed_classes, channels, 1)

    def forward(self, tokens: Tensor) -> Tensor:  # (B, K', L0²) -> (B, C0, L0, L0)
        return self.conv(rearrange(tokens, "b k (h w) -> b k h w", h=self.token_size))
