"""SPADE (Park et al., CVPR 2019), the baseline CA²-SIS is compared against
(docs/architecture.md#the-baselines-spade-and-sean).

    mask ──► nearest to image/32 ──► Conv3×3(K → 16·ngf)
         ──► head_0 ─ ↑ ─ G_middle_0 ─ G_middle_1 ─ ↑ ─ up_0 ─ ↑ ─ up_1 ─ ↑ ─ up_2 ─ ↑ ─ up_3
         ──► LeakyReLU(0.2) ──► Conv3×3(ngf → 3) ──► tanh                    (↑ = nearest ×2)

Every block is a SPADEResBlock whose normalisations are SPADE layers: the layout enters at
every resolution as a per-pixel scale γ and shift β computed from the (resized) one-hot mask.
This is the opposite design choice to CA²-SIS, where the mask enters once, as shape tokens, and
per-class styles are chosen by cross-attention (docs/architecture.md#cross-attention-generator).
Implemented from the description in docs/architecture.md#spade-de-normalisation, not from NVIDIA's
code.

The same skeleton, with SEAN normalisations (per-class style codes, ``sean.py``), is the
style-aware baseline. ``record_modulation`` / ``modulation_maps`` expose each layer's γ and β,
the SPADE counterpart of CA²-SIS's attention maps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ..contract import check_image_size
from ..masks import resize_mask
from .config import ConfigDictMixin, check_ignore_index
from .generator_base import GeneratorMixin

# --------------------------------------------------------------------------------------------
# Outputs and γ/β inspection
# --------------------------------------------------------------------------------------------


@dataclass
class SPADEOutput:
    """What SPADE-family generators return; the fields mirror ``CA2SISOutput``."""

    image: Tensor  # (B, 3, H, W) in [-1, 1]
    logits: None = None  # no attention layers, hence nothing for L_att
    styles: Tensor | None = None  # (B, K, D) per-class style codes (SEAN); None for plain SPADE


@dataclass
class ModulationMaps:
    """Magnitude of one layer's modulation: channel-mean |γ| and |β|, each (B, h, w)."""

    gamma: Tensor
    beta: Tensor

    @classmethod
    def from_modulation(cls, gamma: Tensor, beta: Tensor) -> "ModulationMaps":
        return cls(gamma=gamma.detach().abs().mean(dim=1).float(), beta=beta.detach().abs().mean(dim=1).float())


# --------------------------------------------------------------------------------------------
# SPADE layer and residual block (docs/architecture.md#spade-de-normalisation)
# --------------------------------------------------------------------------------------------


class SPADE(nn.Module):
    """SPADE(x, M) = BN(x)·(1 + γ(M)) + β(M), docs/architecture.md#spade-de-normalisation (11).

    BN is a parameter-free BatchNorm2d (affine=False); M is resized to x (nearest); γ and β come
    from a shared Conv3×3(K → hidden)+ReLU followed by two Conv3×3(hidden → C).
    Set ``record = True`` to keep the last call's channel-mean |γ|, |β| in ``recorded``
    (see ``record_modulation``).
    """

    def __init__(self, norm_channels: int, label_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(norm_channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_channels, 3, padding=1)
        self.record = False
        self.recorded: ModulationMaps | None = None

    def mask_modulation(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Resized one-hot mask (B, K, h, w) -> γ, β (B, C, h, w) (SEAN's γ_o, β_o)."""
        hidden = self.mlp_shared(mask)
        return self.mlp_gamma(hidden), self.mlp_beta(hidden)

    def modulation(self, mask: Tensor, styles: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """γ, β for a mask already resized to the feature map. SPADE ignores ``styles``."""
        return self.mask_modulation(mask)

    def normalize(self, x: Tensor) -> Tensor:
        return self.param_free_norm(x)

    def forward(self, x: Tensor, mask: Tensor, styles: Tensor | None = None) -> Tensor:
        """x (B, C, h, w), one-hot mask (B, K, H, W) [, styles (B, K, D)] -> (B, C, h, w)."""
        normalized = self.normalize(x)
        gamma, beta = self.modulation(resize_mask(mask, tuple(x.shape[-2:])), styles)
        if self.record:
            self.recorded = ModulationMaps.from_modulation(gamma, beta)
        # (11) SPADE(x, M) = (x − μ(x)) / σ(x) ⊙ (1 + γ(M)) + β(M)   (docs/architecture.md#spade-de-normalisation)
        return normalized * (1 + gamma) + beta


NormFactory = Callable[[int], SPADE]  # channels -> normalisation layer (SPADE or a subclass)


class SPADEResBlock(nn.Module):
    """Residual block with SPADE normalisations (docs/architecture.md#spade-de-normalisation), f_mid = min(f_in, f_out).

    main:     SPADE → LeakyReLU(0.2) → Conv3×3(f_in → f_mid) → SPADE → LeakyReLU(0.2) → Conv3×3(f_mid → f_out)
    shortcut: SPADE → Conv1×1(f_in → f_out, no bias) when f_in ≠ f_out, identity otherwise.
    The three convolutions carry spectral norm. ``make_norm`` swaps the SPADE layers for another
    kind with the same call signature (SEAN uses it); ``label_channels`` and ``hidden`` then go unused.
    """

    def __init__(self, f_in: int, f_out: int, label_channels: int, hidden: int = 128,
                 make_norm: NormFactory | None = None) -> None:
        super().__init__()
        if make_norm is None:
            make_norm = lambda channels: SPADE(channels, label_channels, hidden)
        f_mid = min(f_in, f_out)
        self.learned_shortcut = f_in != f_out
        self.norm_0 = make_norm(f_in)
        self.conv_0 = spectral_norm(nn.Conv2d(f_in, f_mid, 3, padding=1))
        self.norm_1 = make_norm(f_mid)
        self.conv_1 = spectral_norm(nn.Conv2d(f_mid, f_out, 3, padding=1))
        if self.learned_shortcut:
            self.norm_s = make_norm(f_in)
            self.conv_s = spectral_norm(nn.Conv2d(f_in, f_out, 1, bias=False))

    def forward(self, x: Tensor, mask: Tensor, styles: Tensor | None = None) -> Tensor:
        """x (B, f_in, h, w) -> (B, f_out, h, w); the mask is resized inside each SPADE."""
        shortcut = self.conv_s(self.norm_s(x, mask, styles)) if self.learned_shortcut else x
        h = self.conv_0(F.leaky_relu(self.norm_0(x, mask, styles), 0.2))
        h = self.conv_1(F.leaky_relu(self.norm_1(h, mask, styles), 0.2))
        return shortcut + h


# --------------------------------------------------------------------------------------------
# The generator skeleton ("normal" upsampling), shared by SPADE and SEAN
# --------------------------------------------------------------------------------------------

# (block, input width / ngf, output width / ngf, nearest ×2 before the block)
BLOCK_PLAN: tuple[tuple[str, int, int, bool], ...] = (
    ("head_0", 16, 16, False),  # image/32, 8² at 256²
    ("G_middle_0", 16, 16, True),  # 16²
    ("G_middle_1", 16, 16, False),  # 16²
    ("up_0", 16, 8, True),  # 32²
    ("up_1", 8, 4, True),  # 64²
    ("up_2", 4, 2, True),  # 128²
    ("up_3", 2, 1, True),  # 256²
)
NUM_UPSAMPLES = sum(up for *_, up in BLOCK_PLAN)  # 5: the first map is image/32


class SPADEDecoder(nn.Module):
    """NVIDIA's SPADE generator body (docs/architecture.md#the-baselines-spade-and-sean, "normal" upsampling): one-hot
    mask [+ styles] -> RGB.

    ``make_norm(block_name, channels)`` builds each normalisation layer, so SEAN can put style
    branches in some blocks and plain SPADE in others.
    """

    def __init__(self, label_channels: int, ngf: int, start_size: int,
                 make_norm: Callable[[str, int], SPADE]) -> None:
        super().__init__()
        self.start_size = start_size
        self.fc = nn.Conv2d(label_channels, 16 * ngf, 3, padding=1)  # mask at image/32 -> 16·ngf
        self.block_names = tuple(name for name, *_ in BLOCK_PLAN)
        self.upsample_before = {name: up for name, _, _, up in BLOCK_PLAN}
        for name, c_in, c_out, _ in BLOCK_PLAN:
            norm = lambda channels, block=name: make_norm(block, channels)
            self.add_module(name, SPADEResBlock(c_in * ngf, c_out * ngf, label_channels, make_norm=norm))
        self.conv_img = nn.Conv2d(ngf, 3, 3, padding=1)

    def forward(self, mask: Tensor, styles: Tensor | None = None) -> Tensor:
        """one-hot mask (B, K, H, W) [, styles (B, K, D)] -> image (B, 3, 32·s, 32·s), s = start_size."""
        x = self.fc(resize_mask(mask, (self.start_size, self.start_size)))  # (B, 16·ngf, s, s)
        for name in self.block_names:
            if self.upsample_before[name]:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = getattr(self, name)(x, mask, styles)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

def check_skeleton(image_size: int, num_classes: int, ngf: int, spade_hidden: int) -> None:
    """Constraints of the SPADE skeleton; raises ``ValueError`` naming the bad value."""
    check_image_size(image_size)  # the one size rule; the generator starts at image_size/2**NUM_UPSAMPLES
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if ngf < 1 or spade_hidden < 1:
        raise ValueError(f"ngf and spade_hidden must be positive, got {ngf} and {spade_hidden}")


@dataclass(frozen=True)
class SPADEConfig(ConfigDictMixin):
    """SPADE generator without its VAE encoder (docs/architecture.md#the-baselines-spade-and-sean).
    Widths are multiples of ``ngf``."""

    image_size: int = 256
    num_classes: int = 19  # K, the one-hot channels fed to every SPADE layer
    ngf: int = 64
    spade_hidden: int = 128  # width of each SPADE layer's shared conv
    ignore_index: int | None = None  # label value that belongs to no class (e.g. 255)

    def __post_init__(self) -> None:
        check_skeleton(self.image_size, self.num_classes, self.ngf, self.spade_hidden)
        check_ignore_index(self.ignore_index, self.num_classes)

    @property
    def start_size(self) -> int:
        return self.image_size // 2**NUM_UPSAMPLES

    @classmethod
    def paper(cls, **overrides: Any) -> "SPADEConfig":
        """NVIDIA's model as the comparison uses it: K = 19, ngf 64, 256², 92,538,819 parameters."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> "SPADEConfig":
        """64², K = 12 like ``CA2SISConfig.tiny()``; ngf and spade_hidden are the paper's / 8 (1,485,787
        parameters), the same skeleton as ``SEANConfig.tiny()`` without its style branch."""
        return dataclasses.replace(cls(image_size=64, num_classes=12, ngf=8, spade_hidden=16), **overrides)


# --------------------------------------------------------------------------------------------
# Input checks shared by the SPADE family
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# The SPADE generator
# --------------------------------------------------------------------------------------------


class SPADEGenerator(GeneratorMixin, nn.Module):
    """SPADE without the VAE encoder: the image is a function of the mask alone
    (docs/architecture.md#the-baselines-spade-and-sean).

    ``model(image, mask)`` has the same call shape as ``CA2SIS`` so one trainer serves both; the
    real image is only checked (size, batch), never read, and may be ``None``.
    """

    counted_parts = {"decoder": "decoder"}

    def __init__(self, config: SPADEConfig) -> None:
        super().__init__()
        self.config = config
        self.decoder = SPADEDecoder(
            config.num_classes, config.ngf, config.start_size,
            make_norm=lambda _, channels: SPADE(channels, config.num_classes, config.spade_hidden),
        )

    def decode(self, mask: Tensor) -> SPADEOutput:
        """Labels or a (possibly hand-composed) one-hot mask -> image (B, 3, H, W)."""
        return SPADEOutput(image=self.decoder(self.prepare_mask(mask)))

    def forward(self, image: Tensor | None, mask: Tensor) -> SPADEOutput:
        """The mask alone makes the image; ``image``, when given, is checked like every model's input."""
        if image is not None:
            self.prepare_inputs(image, mask)
        return self.decode(mask)


# --------------------------------------------------------------------------------------------
# γ / β inspection (the SPADE counterpart of attention maps)
# --------------------------------------------------------------------------------------------


@contextmanager
def record_modulation(model: nn.Module) -> Iterator[dict[str, ModulationMaps]]:
    """Record every SPADE-family layer's |γ|, |β| during the calls made inside the block.

    The yielded dict is filled when the block exits, keyed by module name in forward order
    (e.g. ``"decoder.up_1.norm_0"``), with the last call's channel-mean magnitudes (B, h, w)::

        with record_modulation(model) as maps:
            model.decode(one_hot, styles)
        maps["decoder.head_0.norm_0"].gamma
    """
    layers = {name: m for name, m in model.named_modules() if isinstance(m, SPADE)}
    for layer in layers.values():
        layer.record, layer.recorded = True, None
    maps: dict[str, ModulationMaps] = {}
    try:
        yield maps
    finally:
        for name, layer in layers.items():
            if layer.recorded is not None:
                maps[name] = layer.recorded
            layer.record, layer.recorded = False, None


def modulation_maps(model: nn.Module, *args: Any, **kwargs: Any) -> dict[str, ModulationMaps]:
    """Run ``model(*args, **kwargs)`` without gradients and return each layer's |γ|, |β| maps.

    ``modulation_maps(spade, None, labels)`` or ``modulation_maps(sean, image, labels)``.
    """
    with torch.no_grad(), record_modulation(model) as maps:
        model(*args, **kwargs)
    return maps
