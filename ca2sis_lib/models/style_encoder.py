"""Multi-resolution grouped style encoder (docs/architecture.md#grouped-style-encoder): one style code per class.

A U-Net whose convolutions are grouped with G = K groups (one channel group per class). After
each up-sampling level the features are average-pooled *inside each class region* and projected
per class to a D-dim code; the levels are concatenated coarse-to-fine, giving (B, K, levels·D).
The paper has one level fewer up than down (finest code read at half size); with as many up as
down (the tiny preset at 64²) the finest code is read at full size, where small parts keep pixels.

The authors' quirk is kept on purpose (docs/architecture.md#the-authors-class-straddling-quirk): after the first skip
concatenation
``cat([decoder, skip])`` the next grouped conv's groups straddle classes. ``class_aligned=True``
interleaves the skip per class instead (an ablation; it does not load the authors' weights).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from ..masks import resize_mask


def _conv_gn_relu(c_in: int, c_out: int, groups: int, conv_groups: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, groups=conv_groups),
        nn.GroupNorm(groups, c_out),
        nn.ReLU(),
    ]


class GroupedStyleEncoder(nn.Module):
    def __init__(self, num_classes: int, features_per_class: int, downsamples: int, upsamples: int,
                 style_dim: int, class_aligned: bool = False) -> None:
        super().__init__()
        g = num_classes
        self.groups, self.style_dim, self.class_aligned = g, style_dim, class_aligned
        widths = [g * features_per_class * 2**i for i in range(downsamples + 1)]  # C_0 … C_n
        self.first_layer = nn.Sequential(*_conv_gn_relu(3, widths[0], g, conv_groups=1))
        self.down = nn.ModuleList(
            nn.Sequential(*_conv_gn_relu(widths[i], widths[i + 1], g, conv_groups=g, stride=2))
            for i in range(downsamples)
        )
        self.up = nn.ModuleList()
        self.to_style = nn.ModuleList()
        for j in range(upsamples):
            c_in = widths[downsamples] if j == 0 else 2 * widths[downsamples - j]  # previous ⊕ skip
            c_out = widths[downsamples - 1 - j]
            self.up.append(nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                *_conv_gn_relu(c_in, c_out, g, conv_groups=g),
            ))
            # per-class projection: grouped 1x1 Conv1d (C -> D·G, groups G), then tanh
            self.to_style.append(nn.Sequential(nn.Conv1d(c_out, style_dim * g, 1, groups=g), nn.Tanh()))

    def pool_per_class(self, features: Tensor, mask: Tensor) -> Tensor:
        """Masked average of each class's channel group inside its region: (B, C, h, w) -> (B, C)."""
        m = resize_mask(mask, tuple(features.shape[-2:]))  # (B, K, h, w), background included
        m = m.repeat_interleave(features.shape[1] // self.groups, dim=1)  # class c covers group c
        return (features * m).sum((2, 3)) / (m.sum((2, 3)) + 1e-5)

    def concat_skip(self, x: Tensor, skip: Tensor) -> Tensor:
        if not self.class_aligned:
            return torch.cat([x, skip], dim=1)  # the authors' order [decoder, skip]
        x = rearrange(x, "b (g c) h w -> b g c h w", g=self.groups)
        skip = rearrange(skip, "b (g c) h w -> b g c h w", g=self.groups)
        return rearrange(torch.cat([x, skip], dim=2), "b g c h w -> b (g c) h w")

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        """image (B, 3, H, W) in [-1, 1], one-hot mask (B, K, H, W) -> styles (B, K, levels·D)."""
        x = self.first_layer(image)
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)  # C_1@H/2 … C_n@H/2^n
        skips.pop()  # the bottleneck is not a skip
        codes = []
        for j, (up, to_style) in enumerate(zip(self.up, self.to_style)):
            x = up(x)
            pooled = self.pool_per_class(x, mask)  # (B, C)
            code = to_style(pooled.unsqueeze(-1)).squeeze(-1)  # (B, G·D)
            codes.append(rearrange(code, "b (g d) -> b g d", g=self.groups))
            if j + 1 < len(self.up):
                x = self.concat_skip(x, skips.pop())
        return torch.cat(codes, dim=-1)  # (B, K, levels·D), coarsest level first
