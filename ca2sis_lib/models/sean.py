"""SEAN-style per-class styles on the SPADE skeleton (Zhu et al., CVPR 2020;
docs/architecture.md#the-baselines-spade-and-sean).

    image, mask ──► GroupedStyleEncoder (the CA²-SIS one, docs/architecture.md#grouped-style-encoder) ──► styles (B, K,
D)
    mask, styles ──► SPADE skeleton with SEANNorm layers ──► RGB

The style encoder is CA²-SIS's own, so that comparing the two models changes only how the
per-class codes reach the pixels: CA²-SIS lets every pixel *attend* to the K codes, SEAN
*paints* each class's code into its region of the mask (at every layer) and turns it into a
scale and a shift. Implemented from the description in docs/architecture.md#the-sean-blend, not
from the SEAN code.

SEANNorm (SEAN's "ACE"), per layer:
    style branch: s_j = ReLU(Linear_j(D → D')(style_j)) painted into region j → (B, D', h, w)
                  → Conv3×3 → γ_s, β_s
    mask branch:  SPADE's γ_o, β_o
    blend:        γ = σ(a_γ)·γ_s + (1 − σ(a_γ))·γ_o (likewise β), a_γ = a_β = 0 at init (0.5/0.5)
    out = BN(x)·(1 + γ) + β
As in SEAN, the last block (up_3) has no style branch. SEAN's learned noise injection is
available behind ``SEANConfig.noise_injection`` (off by default, so the output is deterministic).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from einops import einsum
from torch import Tensor, nn

from ..contract import prepare_code
from .config import CA2SISConfig, ConfigDictMixin, check_at_least, check_ignore_index
from .generator_base import GeneratorMixin
from .spade import (
    BLOCK_PLAN,
    NUM_UPSAMPLES,
    SPADE,
    SPADEDecoder,
    SPADEOutput,
    check_skeleton,
)
from .style_encoder import GroupedStyleEncoder


class PerClassLinear(nn.Module):
    """K independent Linear(D → D') layers, one per class, applied to styles (B, K, D) -> (B, K, D').

    Stored as one (K, D', D) weight; initialised like K separate ``nn.Linear`` layers.
    """

    def __init__(self, num_classes: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default range for weight and bias
        self.weight = nn.Parameter(torch.empty(num_classes, out_features, in_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_classes, out_features).uniform_(-bound, bound))

    def forward(self, styles: Tensor) -> Tensor:
        return einsum(styles, self.weight, "b k d, k e d -> b k e") + self.bias


class SEANNorm(SPADE):
    """SPADE plus a per-class style branch, blended by learned sigmoid weights (docs/architecture.md#the-sean-blend).

    ``SEANNorm(...).mask_modulation`` is the inherited SPADE (γ_o, β_o); ``style_modulation``
    paints the per-class codes into their regions and gives γ_s, β_s.
    """

    def __init__(self, norm_channels: int, label_channels: int, style_dim: int, style_hidden: int = 512,
                 hidden: int = 128, noise: bool = False) -> None:
        super().__init__(norm_channels, label_channels, hidden)
        self.class_projection = PerClassLinear(label_channels, style_dim, style_hidden)
        self.style_gamma = nn.Conv2d(style_hidden, norm_channels, 3, padding=1)
        self.style_beta = nn.Conv2d(style_hidden, norm_channels, 3, padding=1)
        self.blend_gamma = nn.Parameter(torch.zeros(()))  # σ(0) = 0.5: half style, half mask
        self.blend_beta = nn.Parameter(torch.zeros(()))
        self.noise_scale = nn.Parameter(torch.zeros(norm_channels)) if noise else None

    def style_map(self, mask: Tensor, styles: Tensor) -> Tensor:
        """Resized mask (B, K, h, w), styles (B, K, D) -> (B, D', h, w): class j's code fills region j."""
        codes = torch.relu(self.class_projection(styles))  # (B, K, D')
        return einsum(codes, mask, "b k e, b k h w -> b e h w")  # pixels of class k get code k

    def style_modulation(self, mask: Tensor, styles: Tensor) -> tuple[Tensor, Tensor]:
        painted = self.style_map(mask, styles)
        return self.style_gamma(painted), self.style_beta(painted)

    def blend_weights(self) -> tuple[Tensor, Tensor]:
        """σ(a_γ), σ(a_β): the style branch's share of γ and β."""
        return torch.sigmoid(self.blend_gamma), torch.sigmoid(self.blend_beta)

    def modulation(self, mask: Tensor, styles: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if styles is None:
            raise ValueError("a SEAN layer needs the per-class styles (B, K, D)")
        gamma_o, beta_o = self.mask_modulation(mask)
        gamma_s, beta_s = self.style_modulation(mask, styles)
        w_gamma, w_beta = self.blend_weights()
        # (12) γ = σ(a_γ)·γ_s + (1 − σ(a_γ))·γ_o, β likewise   (docs/architecture.md#the-sean-blend)
        return w_gamma * gamma_s + (1 - w_gamma) * gamma_o, w_beta * beta_s + (1 - w_beta) * beta_o

    def normalize(self, x: Tensor) -> Tensor:
        if self.noise_scale is not None:  # SEAN: per-pixel Gaussian noise, learned scale per channel
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_scale.view(1, -1, 1, 1)
        return super().normalize(x)


@dataclass(frozen=True)
class SEANConfig(ConfigDictMixin):
    """SPADE skeleton with SEAN normalisations and the CA²-SIS grouped style encoder."""

    image_size: int = 256
    num_classes: int = 19  # K, background included
    ngf: int = 64
    spade_hidden: int = 128  # mask branch width (SPADE's shared conv)
    style_hidden: int = 512  # D', width of the painted per-class style map (SEAN: 512)
    noise_injection: bool = False  # SEAN's learned noise before each normalisation
    ignore_index: int | None = None
    # the grouped style encoder, as in CA2SISConfig (docs/architecture.md#grouped-style-encoder)
    style_features_per_class: int = 4
    style_downsamples: int = 6
    style_upsamples: int = 5
    style_dim: int = 256  # D per level; the code is style_upsamples · style_dim wide
    style_class_aligned: bool = False

    def __post_init__(self) -> None:
        check_skeleton(self.image_size, self.num_classes, self.ngf, self.spade_hidden)
        check_at_least(self, 1, "style_hidden", "style_features_per_class", "style_downsamples", "style_dim")
        check_ignore_index(self.ignore_index, self.num_classes)
        if self.image_size % 2**self.style_downsamples:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2**style_downsamples = {2**self.style_downsamples}"
            )
        if not 1 <= self.style_upsamples <= self.style_downsamples:
            raise ValueError("style_upsamples must be in [1, style_downsamples] (equal: finest style at full size)")

    @property
    def start_size(self) -> int:
        return self.image_size // 2**NUM_UPSAMPLES

    @property
    def style_code_dim(self) -> int:
        return self.style_upsamples * self.style_dim

    @staticmethod
    def style_settings(config: CA2SISConfig) -> dict[str, Any]:
        """The data and style-encoder fields of a CA²-SIS config, so both models share them."""
        names = ("image_size", "num_classes", "ignore_index", "style_features_per_class", "style_downsamples",
                 "style_upsamples", "style_dim", "style_class_aligned")
        return {name: getattr(config, name) for name in names}

    @classmethod
    def paper(cls, **overrides: Any) -> "SEANConfig":
        """256², K = 19, ngf 64, D' = 512 (SEAN's widths), style encoder of ``CA2SISConfig.paper()``."""
        base = cls(**cls.style_settings(CA2SISConfig.paper()), ngf=64, spade_hidden=128, style_hidden=512)
        return dataclasses.replace(base, **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> "SEANConfig":
        """64², K = 12, style encoder of ``CA2SISConfig.tiny()``; 2,148,329 parameters in all (the tiny
        CA²-SIS without its mapping network has 2,697,875, 1.05 M of them in its mask embedder)."""
        base = cls(**cls.style_settings(CA2SISConfig.tiny()), ngf=8, spade_hidden=16, style_hidden=8)
        return dataclasses.replace(base, **overrides)


STYLED_BLOCKS = tuple(name for name, *_ in BLOCK_PLAN[:-1])  # every block but the last, as SEAN


class SEANGenerator(GeneratorMixin, nn.Module):
    """Per-class style codes on the SPADE skeleton, with CA²-SIS's API (docs/architecture.md#editing-operations
    editing).

    ``model(image, mask)`` reconstructs; ``encode_style`` + ``decode`` compose every edit:
    style transfer swaps rows of the (B, K, D) codes, shape edits decode a composed mask.
    """

    counted_parts = {"style_encoder": "style_encoder", "decoder": "decoder"}

    def __init__(self, config: SEANConfig) -> None:
        super().__init__()
        self.config = config
        self.style_encoder = GroupedStyleEncoder(
            config.num_classes, config.style_features_per_class, config.style_downsamples,
            config.style_upsamples, config.style_dim, config.style_class_aligned,
        )
        self.decoder = SPADEDecoder(config.num_classes, config.ngf, config.start_size, self._make_norm)

    def _make_norm(self, block: str, channels: int) -> SPADE:
        c = self.config
        if block not in STYLED_BLOCKS:
            return SPADE(channels, c.num_classes, c.spade_hidden)
        return SEANNorm(channels, c.num_classes, c.style_code_dim, c.style_hidden, c.spade_hidden, c.noise_injection)

    # -- the parts (every editing operation composes these; each checks its inputs, see contract.py) ---
    def check_styles(self, styles: Tensor, batch: int) -> Tensor:
        """styles (B, K, style_code_dim) of the mask's batch -> on the model's device and dtype."""
        c = self.config
        return prepare_code(styles, (batch, c.num_classes, c.style_code_dim), "styles", self,
                            f"K={c.num_classes} codes of style_code_dim={c.style_code_dim}, one batch with the mask")

    def encode_style(self, image: Tensor, mask: Tensor) -> Tensor:
        """image (B, 3, H, W) in [-1, 1], labels or one-hot mask -> styles (B, K, style_code_dim)."""
        image, one_hot = self.prepare_inputs(image, mask)
        return self.style_encoder(image, one_hot)

    def decode(self, mask: Tensor, styles: Tensor) -> SPADEOutput:
        """Labels or a (possibly composed) one-hot mask, and styles (B, K, D) -> image."""
        one_hot = self.prepare_mask(mask)
        return SPADEOutput(image=self.decoder(one_hot, self.check_styles(styles, one_hot.shape[0])), styles=styles)

    def forward(self, image: Tensor, mask: Tensor) -> SPADEOutput:
        """Reconstruction: styles from ``image``, layout from ``mask`` (labels or one-hot); checked once."""
        image, one_hot = self.prepare_inputs(image, mask)
        styles = self.style_encoder(image, one_hot)
        return SPADEOutput(image=self.decoder(one_hot, styles), styles=styles)

    # -- helpers --------------------------------------------------------------------------
    def sean_layers(self) -> dict[str, SEANNorm]:
        return {name: m for name, m in self.named_modules() if isinstance(m, SEANNorm)}

