"""Multiscale PatchGAN discriminator of CA²-SIS (docs/architecture.md#discriminator-and-training-losses), the pix2pixHD
/ SPADE design.

    concat(one-hot M, RGB) ──► PatchDiscriminator ─────────────────► 4 maps, last = patch logits
             │
             └─► AvgPool(3, s2) ──► PatchDiscriminator ────────────► 4 maps (half resolution)

Each scale is a small fully convolutional net whose output is a *map* of real/fake logits, one
per overlapping input patch (a PatchGAN): the discriminator judges local texture and layout, and
the coarser scale sees larger patches. The mask goes in beside the image, so D judges whether the
image fits the layout, not only whether it looks real.

Every intermediate map is returned, not just the logits: the generator's feature-matching loss
(docs/architecture.md#discriminator-and-training-losses, L1, λ = 10) compares D's features of the real and the generated
image layer by layer.

Training detail (the trainer's job, not this module's): fake and real images go through D as
ONE batch, ``D(cat([M, M]), cat([fake, real]))``, then the outputs are split in two halves. With
instance norm every sample is normalised on its own, so the result equals two separate calls
in eval mode; the single call is cheaper and, in train mode, runs the spectral-norm power
iteration once per step rather than twice.

Parameter names are ours and readable (``scales.{s}.layers.{i}.conv.weight_orig``);
``ca2sis_lib.official_weights`` maps them onto the authors' (``discriminator_{s}.model{i}…``).
Initialisation: PyTorch defaults (the spec does not prescribe one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from ..contract import InputError, check_image_values, check_one_hot, model_placement

KERNEL = 4
PADDING = 2  # pix2pixHD's ceil((4 - 1) / 2): every conv output is one pixel larger than "same"


class ConvLayer(nn.Module):
    """Conv4×4 → [InstanceNorm] → [LeakyReLU(0.2)], the unit of a PatchGAN scale
    (docs/architecture.md#discriminator-and-training-losses).

    With ``normalise=True`` the conv carries spectral norm and no bias (instance norm would
    subtract the bias again). ``torch.nn.utils.spectral_norm`` stores the raw weight as the
    parameter ``conv.weight_orig`` and the power-iteration vectors as the buffers ``conv.weight_u``
    (c_out) and ``conv.weight_v`` (c_in·4·4); ``conv.weight`` = weight_orig / σ is recomputed
    before every forward (in train mode after one power-iteration step that updates u and v).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, normalise: bool, activation: bool) -> None:
        super().__init__()
        conv = nn.Conv2d(c_in, c_out, KERNEL, stride=stride, padding=PADDING, bias=not normalise)
        self.conv = spectral_norm(conv) if normalise else conv
        self.norm = nn.InstanceNorm2d(c_out, affine=False) if normalise else nn.Identity()
        self.act = nn.LeakyReLU(0.2) if activation else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class PatchDiscriminator(nn.Module):
    """One scale (docs/architecture.md#discriminator-and-training-losses): ``num_layers`` stride-2 convs, channels
    doubling from ``base_channels``,
    then Conv4×4(→ 1, stride 1) giving the patch logits. Paper preset (num_layers = 3):

        layer 0  Conv(K+3 → 64, s2)  + LeakyReLU                        H → H/2 + 1
        layer 1  SN-Conv(64 → 128, s2) + InstanceNorm + LeakyReLU       → H/4 + 1 (about)
        layer 2  SN-Conv(128 → 256, s2) + InstanceNorm + LeakyReLU      → H/8 + 1 (about)
        layer 3  Conv(256 → 1, s1)                                      one pixel larger
    """

    def __init__(self, in_channels: int, base_channels: int = 64, num_layers: int = 3) -> None:
        super().__init__()
        layers = [ConvLayer(in_channels, base_channels, stride=2, normalise=False, activation=True)]
        channels = base_channels
        for _ in range(1, num_layers):
            layers.append(ConvLayer(channels, 2 * channels, stride=2, normalise=True, activation=True))
            channels *= 2
        layers.append(ConvLayer(channels, 1, stride=1, normalise=False, activation=False))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x (B, K+3, H, W) -> the output of every layer; the last is the patch logits (B, 1, h, w)."""
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


def downsample(x: Tensor) -> Tensor:
    """The input of the next scale: AvgPool 3×3, stride 2, pad 1, padding left out of the mean."""
    return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)


class MultiscaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the same (mask, image) pair at halving resolutions
    (docs/architecture.md#discriminator-and-training-losses).

    Paper preset: ``MultiscaleDiscriminator(19)`` has exactly 1,364,098 parameters (2 scales ×
    682,049); the spectral-norm vectors ``weight_u``/``weight_v`` are buffers, not parameters.
    """

    def __init__(self, num_classes: int, num_scales: int = 2, base_channels: int = 64, num_layers: int = 3) -> None:
        super().__init__()
        if num_classes < 1 or num_scales < 1 or num_layers < 1:
            sizes = f"num_classes={num_classes}, num_scales={num_scales}, num_layers={num_layers}"
            raise ValueError(f"num_classes, num_scales and num_layers must be positive, got {sizes}")
        self.num_classes = num_classes
        self.num_layers = num_layers
        self.scales = nn.ModuleList(
            PatchDiscriminator(num_classes + 3, base_channels, num_layers) for _ in range(num_scales)
        )

    @property
    def min_size(self) -> int:
        """The smallest side D can judge: its coarsest scale still gets ``2**num_layers`` pixels,
        so every stride-2 layer halves real content rather than padding."""
        return 2 ** (self.num_layers + len(self.scales) - 1)

    def check_inputs(self, mask: Tensor, image: Tensor) -> tuple[Tensor, Tensor]:
        """Raise :class:`~ca2sis_lib.contract.InputError` naming the expected value when mask and image
        do not fit D; return both on D's device and dtype."""
        if not isinstance(mask, Tensor) or mask.dim() != 4 or mask.shape[1] != self.num_classes:
            raise InputError(
                f"mask must be one-hot with shape (B, {self.num_classes}, H, W) for this discriminator "
                f"(num_classes={self.num_classes}), got {tuple(getattr(mask, 'shape', ()))}; convert labels with "
                "ca2sis_lib.masks.labels_to_one_hot"
            )
        if not isinstance(image, Tensor) or image.dim() != 4 or image.shape[1] != 3:
            raise InputError(f"image must have shape (B, 3, H, W), got {tuple(getattr(image, 'shape', ()))}")
        if mask.shape[0] != image.shape[0] or mask.shape[-2:] != image.shape[-2:]:
            raise InputError(
                f"mask {tuple(mask.shape)} and image {tuple(image.shape)} must have the same batch size and "
                "spatial size (resize the mask with nearest-neighbour interpolation)"
            )
        if min(image.shape[-2:]) < self.min_size:
            raise InputError(
                f"image {tuple(image.shape[-2:])} is too small for this discriminator: {len(self.scales)} scales of "
                f"{self.num_layers} stride-2 layers need a side of at least {self.min_size}"
            )
        check_one_hot(mask, self.num_classes, allow_empty_pixels=True, exclusive=False, name="discriminator mask")
        check_image_values(image)
        device, dtype = model_placement(self)
        return mask.to(device=device, dtype=dtype), image.to(device=device, dtype=dtype)

    def forward(self, mask: Tensor, image: Tensor) -> list[list[Tensor]]:
        """One-hot mask (B, K, H, W) and image (B, 3, H, W) in [-1, 1] -> per scale (full
        resolution first) the list of every layer's output, the patch logits (B, 1, h, w) last."""
        mask, image = self.check_inputs(mask, image)
        x = torch.cat([mask, image], dim=1)  # (B, K+3, H, W)
        results = []
        for i, scale in enumerate(self.scales):
            if i > 0:
                x = downsample(x)
            results.append(scale(x))
        return results
