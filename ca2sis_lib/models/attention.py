"""Attention layers of the spatial transformers (docs/architecture.md#class-adaptive-cross-attention), with swappable
processors.

Following diffusers' attention processors, the *projections* (to_q, to_k, to_v, to_out — the
learned weights) live in the module and the *arithmetic* softmax(q·kᵀ/√d)·v lives in a small
processor object that can be swapped:

- ``SDPAProcessor`` calls ``F.scaled_dot_product_attention``: fused kernels, no HW×HW score
  matrix in memory (the authors' 64² self-attention materialises a 4096×4096 matrix per head).
- ``ReferenceProcessor`` is the textbook formula, for reading and for checking the fused path.

Cross-attention is different: its keys are the K class tokens (K = 19 for CelebAMask-HQ), so its
score matrix is only (HW × K) and the pre-softmax logits are *needed* — by the attention loss
(docs/architecture.md#attention-loss-l_att) and by every visualiser. ``CrossAttention`` therefore always computes them
explicitly.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class AttentionProcessor(Protocol):
    def __call__(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """q (B, h, N, d), k and v (B, h, M, d) -> (B, h, N, d)."""


class SDPAProcessor:
    name = "sdpa"

    def __call__(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(q, k, v)  # scale defaults to 1/sqrt(d)


class ReferenceProcessor:
    name = "reference"

    def __call__(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, h, N, M)
        return logits.softmax(dim=-1) @ v


PROCESSORS: dict[str, type] = {"sdpa": SDPAProcessor, "reference": ReferenceProcessor}


class _Projections(nn.Module):
    """q from the tokens, k and v from the context, all without bias; output Linear with bias."""

    def __init__(self, inner: int, context_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(inner, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        # Dropout(0.0) does nothing; it keeps the authors' state-dict indices (to_out.0 is the Linear)
        self.to_out = nn.Sequential(nn.Linear(inner, inner), nn.Dropout(0.0))

    def split_heads(self, t: Tensor) -> Tensor:
        return rearrange(t, "b n (h d) -> b h n d", h=self.heads)  # head-major split
        # (docs/architecture.md#class-adaptive-cross-attention)

    def merge_heads(self, t: Tensor) -> Tensor:
        return self.to_out(rearrange(t, "b h n d -> b n (h d)"))


class SelfAttention(_Projections):
    """``attn1``: every pixel attends to every pixel of the same feature map."""

    def __init__(self, inner: int, heads: int, processor: str = "sdpa") -> None:
        super().__init__(inner, inner, heads)
        self.processor: AttentionProcessor = PROCESSORS[processor]()

    def forward(self, x: Tensor) -> Tensor:  # x (B, HW, inner)
        q, k, v = (self.split_heads(proj(x)) for proj in (self.to_q, self.to_k, self.to_v))
        return self.merge_heads(self.processor(q, k, v))

    @torch.no_grad()
    def map_for_query(self, x: Tensor, index: int) -> Tensor:
        """Softmax weights of one query pixel over all pixels, (B, h, HW), without the HW×HW matrix."""
        q = self.split_heads(self.to_q(x[:, index : index + 1]))  # (B, h, 1, d)
        k = self.split_heads(self.to_k(x))  # (B, h, HW, d)
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, h, 1, HW)
        return logits.softmax(dim=-1)[:, :, 0]


class CrossAttention(_Projections):
    """``attn2``: class-adaptive cross-attention. Queries are pixels, keys/values are the K
    per-class style codes, so each pixel distributes its attention over the classes
    (docs/architecture.md#class-adaptive-cross-attention)."""

    def __init__(self, inner: int, style_dim: int, heads: int) -> None:
        super().__init__(inner, style_dim, heads)

    def forward(self, x: Tensor, styles: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, HW, inner), styles (B, K, style_dim) -> output (B, HW, inner), logits (B, h, HW, K)."""
        q = self.split_heads(self.to_q(x))  # (B, h, HW, d)
        k = self.split_heads(self.to_k(styles))  # (B, h, K, d)
        v = self.split_heads(self.to_v(styles))  # (B, h, K, d)
        # (4) ℓ(p, k) = q_p · k_k / √d   (docs/architecture.md#class-adaptive-cross-attention)
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, h, HW, K), pre-softmax
        # (5) A(p, k) = exp ℓ(p, k) / Σ_k' exp ℓ(p, k'), out_p = Σ_k A(p, k) v_k: the softmax runs over
        #     the K classes, not the pixels (W_O is applied by the caller, to_out)
        out = logits.softmax(dim=-1) @ v  # (B, h, HW, d)
        return self.merge_heads(out), logits
