"""The generator's building blocks (docs/architecture.md#cross-attention-generator): ResBlock, GEGLU feed-forward,
transformer block,
spatial transformer. Module names follow the latent-diffusion convention the authors used
(``in_layers``, ``proj_in``, ``attn2`` …) so that their checkpoints map onto ours one to one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .attention import CrossAttention, SelfAttention
from .memory_saving import BlockedGEGLUFeedForward, checkpointed_token_chunks


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the input dtype (docs/architecture.md#resblock: stable under autocast)."""

    def forward(self, x: Tensor) -> Tensor:
        # the affine parameters in float32 too: a half or bf16 model on the CPU has no mixed-dtype group_norm
        weight, bias = (None if p is None else p.float() for p in (self.weight, self.bias))
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).type(x.dtype)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero-initialise: the block starts as the identity (docs/architecture.md#initialisation)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """Diffusion-UNet ResBlock without time embedding: skip(x) + conv(SiLU(GN(conv(SiLU(GN(x))))))."""

    def __init__(self, c_in: int, c_out: int, upsample: bool, groups: int = 32) -> None:
        super().__init__()
        self.upsample = upsample
        self.in_layers = nn.Sequential(GroupNorm32(groups, c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.out_layers = nn.Sequential(
            GroupNorm32(groups, c_out),
            nn.SiLU(),
            nn.Dropout(0.0),  # a no-op placeholder: keeps the authors' state-dict indices (out_layers.3 = conv)
            zero_module(nn.Conv2d(c_out, c_out, 3, padding=1)),  # zero-init: block = skip at init
        )
        self.skip_connection = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:  # (B, c_in, H, W) -> (B, c_out, H', W')
        h = self.in_layers[:-1](x)  # GN -> SiLU
        if self.upsample:  # nearest x2 on both paths, *after* the activation
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.out_layers(self.in_layers[-1](h))
        return self.skip_connection(x) + h


class GEGLU(nn.Module):
    """Linear(d -> 2·d_ff), split into (a, gate) in that order, a · GELU(gate) (exact erf GELU)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 2 * hidden)

    def forward(self, x: Tensor) -> Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU (dim -> 2·mult·dim, split) then Linear(mult·dim -> dim).

    ``lean`` (default on) runs the two Linears and GEGLU as one autograd function
    (:class:`~.memory_saving.BlockedGEGLUFeedForward`: block by block, keeping only ``x``, ``a`` and ``gate`` for
    backward); ``lean = False`` is the plain module path.
    """

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        # Dropout(0.0) does nothing; it keeps the authors' state-dict indices (net.2 is the Linear)
        self.net = nn.Sequential(GEGLU(dim, mult * dim), nn.Dropout(0.0), nn.Linear(mult * dim, dim))
        self.lean = True

    def forward(self, x: Tensor) -> Tensor:
        if not (self.lean and torch.is_grad_enabled()):
            return self.net(x)
        tensors = (x, self.net[0].proj.weight, self.net[0].proj.bias, self.net[2].weight, self.net[2].bias)
        # under autocast the Linears would run in its dtype; a 1×1 matmul asks autocast which one, on
        # every torch this package admits (torch.get_autocast_dtype(device) needs torch >= 2.4)
        dtype = torch.mm(x.new_zeros(1, 1), x.new_zeros(1, 1)).dtype
        return BlockedGEGLUFeedForward.apply(*(t.to(dtype) for t in tensors))  # .to: no copy when dtypes agree


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: [self-attn] -> class-adaptive cross-attn -> GEGLU FF, each residual."""

    def __init__(self, inner: int, heads: int, style_dim: int, self_attention: bool, ff_mult: int, processor: str):
        super().__init__()
        if self_attention:
            self.norm1 = nn.LayerNorm(inner)
            self.attn1 = SelfAttention(inner, heads, processor)
        self.has_self_attention = self_attention
        self.norm2 = nn.LayerNorm(inner)
        self.attn2 = CrossAttention(inner, style_dim, heads)
        self.norm3 = nn.LayerNorm(inner)
        self.ff = FeedForward(inner, ff_mult)

        self.chunk_tokens = 0  # memory mode: tokens per chunk after self-attention (0: all at once)

    def forward(self, x: Tensor, styles: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, N, inner), styles (B, K, D) -> x (B, N, inner), logits (B, heads, N, K)."""
        if self.has_self_attention:
            x = self.attn1(self.norm1(x)) + x
        if self.chunk_tokens and x.shape[1] > self.chunk_tokens and torch.is_grad_enabled():
            # Memory mode. After self-attention every token is on its own (its query meets the K
            # class keys; LayerNorm and the GEGLU feed-forward, 8·inner wide, are per token), so
            # chunks of tokens give exactly the same result; each chunk is recomputed in backward.
            return checkpointed_token_chunks(self.per_token, x, styles, self.chunk_tokens)
        return self.per_token(x, styles)

    def per_token(self, x: Tensor, styles: Tensor) -> tuple[Tensor, Tensor]:
        """Class-adaptive cross-attention, then the feed-forward, each with its residual."""
        out, logits = self.attn2(self.norm2(x), styles)
        x = out + x
        x = self.ff(self.norm3(x)) + x
        return x, logits


class SpatialTransformer(nn.Module):
    """GN -> 1x1 proj_in -> tokens -> TransformerBlock -> 1x1 proj_out (zero-init) -> + input."""

    def __init__(self, channels: int, heads: int, head_dim: int, style_dim: int, self_attention: bool,
                 groups: int = 32, ff_mult: int = 4, processor: str = "sdpa") -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.norm = GroupNorm32(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.block = TransformerBlock(inner, heads, style_dim, self_attention, ff_mult, processor)
        self.proj_out = zero_module(nn.Conv2d(inner, channels, 1))

    def forward(self, x: Tensor, styles: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, c, H, W), styles (B, K, style_dim) -> x (B, c, H, W), logits (B, heads, K, H, W)."""
        _, _, height, width = x.shape
        h = self.proj_in(self.norm(x))
        h = rearrange(h, "b c h w -> b (h w) c")  # row-major tokens
        h, logits = self.block(h, styles)
        h = rearrange(h, "b (h w) c -> b c h w", h=height, w=width)
        logits = rearrange(logits, "b n (h w) k -> b n k h w", h=height, w=width)
        return self.proj_out(h) + x, logits
