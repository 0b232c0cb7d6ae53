"""Training losses (docs/architecture.md#discriminator-and-training-losses): hinge GAN, discriminator
feature matching, VGG19 perceptual loss, an L1 reconstruction term, the attention loss L_att on the
model's attention logits, and the mapping stage's code-distribution term L_code.

The generator's objective in the paper recipe is

    L_G = L_GAN + 10 · L_FM + 10 · L_VGG + 1 · L_att                                        (10)
(docs/architecture.md#discriminator-and-training-losses; its terms are added in
:func:`ca2sis_lib.training.steps.reconstruction_losses`)

VGG19 needs ImageNet weights. They are used when torchvision has them cached (or may download
them, on Colab); otherwise ``PerceptualLoss`` says so once and the trainer falls back to an L1
term — a documented deviation that lets the project train without any download.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .hub import hub_file_cached
from .masks import resize_mask

DiscriminatorOutput = list[list[Tensor]]  # per scale: intermediate features, patch logits last


def hinge_d_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> Tensor:
    """mean ReLU(1 - D(real)) + mean ReLU(1 + D(fake)), averaged over scales."""
    losses = [F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake)]
    return torch.stack(losses).mean()


def hinge_g_loss(fake: DiscriminatorOutput) -> Tensor:
    """-mean D(fake), averaged over scales."""
    return torch.stack([-f[-1].mean() for f in fake]).mean()


def feature_matching_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> Tensor:
    """L1 between D's intermediate features of fake and (detached) real, summed over layers,
    divided by the number of scales (SPADE/pix2pixHD convention; λ = 10 is applied by the caller)."""
    total = fake[0][0].new_zeros(())
    for r_scale, f_scale in zip(real, fake):
        for r, f in zip(r_scale[:-1], f_scale[:-1]):
            total = total + F.l1_loss(f, r.detach())
    return total / len(fake)


def attention_loss(layer_logits: list[Tensor], mask: Tensor, pos_weight_max: float = 0.0) -> Tensor:
    """L_att: head-averaged pre-softmax logits vs the nearest-resized one-hot mask
    (docs/architecture.md#attention-loss-l_att, (6)–(8)):

        ℓ̄_k(p) = (1/H) Σ_h ℓ_h(p, k),   L⁽ˡ⁾ = (1/K) Σ_k (1/|P|) Σ_p BCE(ℓ̄_k(p), M_k(p))     (6)
        L_att = (1/N) Σ_l L⁽ˡ⁾                                                          (7)
        w_k = clip(N_k⁻ / N_k⁺, 1, w_max), weighting class k's positive pixels in BCE      (8)

    For each layer: BCE-with-logits per class (a mean over B·h·w), averaged over the K classes
    (background and absent classes included); then the mean over layers. Pixels that belong to no
    class (an ignore label) are left out; without them this is exactly the authors' loss.

    ``pos_weight_max > 0`` is this project's class-balanced variant (a documented deviation, used by
    the shipped toy models): class k's positive pixels are weighted by ``neg_k / pos_k`` of the
    batch, clamped to [1, pos_weight_max], so that a 2-pixel eye is not outvoted by the ~1000
    pixels where it is absent; the authors' unweighted BCE never learns to put small parts first.
    """
    losses = []
    for logits in layer_logits:  # (B, heads, K, h, w)
        mean_logits = logits.float().mean(dim=1)  # (B, K, h, w): (6) ℓ̄_k(p), the average over heads
        target = resize_mask(mask, tuple(mean_logits.shape[-2:]))  # works for non-square maps too
        valid = target.sum(dim=1, keepdim=True) > 0  # (B, 1, h, w)
        pos_weight = None
        if pos_weight_max > 0:
            positives = (target * valid).sum(dim=(0, 2, 3))  # (K,)
            negatives = valid.sum() - positives
            # (8) the class-balanced weight w_k = clip(N_k⁻ / N_k⁺, 1, w_max)
            pos_weight = (negatives / positives.clamp_min(1)).clamp(1.0, pos_weight_max)[:, None, None]  # (K, 1, 1)
        # (6) BCE(ℓ̄_k(p), M_k(p)) = −[w_k·M·log σ(ℓ̄) + (1 − M)·log(1 − σ(ℓ̄))], w_k = 1 unless balanced
        bce = F.binary_cross_entropy_with_logits(mean_logits, target, reduction="none", pos_weight=pos_weight)
        if bool(valid.all()):
            losses.append(bce.mean())
        else:
            losses.append((bce * valid).sum() / (valid.sum() * bce.shape[1]).clamp_min(1))
    return torch.stack(losses).mean()  # (7) L_att = (1/N) Σ_l L⁽ˡ⁾


def principal_axes(codes: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """The mean (K·D,) and the ``count`` directions of largest variance (K·D, count) of style codes
    (N, K, D), each sample taken as one vector of K·D numbers (PCA, largest first)."""
    x = codes.float().flatten(1)  # (N, K·D)
    _, axes = torch.linalg.eigh(torch.cov(x.T))  # ascending eigenvalues, (K·D, K·D)
    return x.mean(0), axes.flip(1)[:, :count]


def code_distribution_loss(codes: Tensor, real_codes: Tensor, mean: Tensor, axes: Tensor,
                           projections: int = 128) -> Tensor:
    """L_code: how far the mapping network's codes are from real images' codes, as a distribution
    (this project's addition to the mapping stage, docs/training_recipes.md#the-mapping-network).

    codes (M, K, D) from M noise draws, real_codes (M, K, D) from the style encoder on M real
    images; ``mean`` and ``axes`` (K·D, r) from :func:`principal_axes` of the real codes. Both sets
    are written in the r principal coordinates (where real faces differ most), then compared by the
    sliced Wasserstein distance: project on random unit directions θ, sort each projection, and

        L_code = mean_θ mean_i (sort(u·θ)_i − sort(u_real·θ)_i)²  /  mean_θ var(u_real·θ)

    Matching every 1-d projection's distribution matches the whole distribution (means, spreads and
    how the classes' codes vary together), and unlike a loss on the covariance it still pulls when
    the mapping network starts with almost no spread. 1 is the distance of a collapse onto the mean.
    """
    u = (codes.float().flatten(1) - mean) @ axes  # (M, r)
    u_real = (real_codes.float().flatten(1) - mean) @ axes  # (M, r)
    theta = F.normalize(torch.randn(axes.shape[1], projections, device=u.device), dim=0)  # (r, P) unit columns
    sorted_fake, sorted_real = (u @ theta).sort(0).values, (u_real @ theta).sort(0).values  # (M, P) each
    return (sorted_fake - sorted_real).square().mean() / sorted_real.var(0).mean().clamp_min(1e-12)


VGG_LAYERS = {1: 1 / 32, 6: 1 / 16, 11: 1 / 8, 20: 1 / 4, 29: 1.0}  # relu1_1 … relu5_1 of vgg19.features


def vgg19_weights_available() -> bool:
    """True when torchvision's ImageNet VGG19 file is in the torch hub cache."""
    from torchvision.models import VGG19_Weights

    return hub_file_cached(Path(VGG19_Weights.IMAGENET1K_V1.url).name)


class PerceptualLoss(nn.Module):
    """VGG19 L1 feature loss on relu1_1 … relu5_1 with weights 1/32 … 1
    (docs/architecture.md#discriminator-and-training-losses).

    Inputs are fed in [-1, 1] without ImageNet normalisation, as SPADE does. ``pretrained=False`` builds
    it with random weights: the same computation and memory, a meaningless loss (for timing only,
    ``ca2sis_lib/training/step_timer.py``).
    """

    def __init__(self, allow_download: bool = False, pretrained: bool = True) -> None:
        super().__init__()
        from torchvision.models import VGG19_Weights, vgg19

        if pretrained and not (vgg19_weights_available() or allow_download):
            raise FileNotFoundError("VGG19 ImageNet weights are not cached and downloading is not allowed")
        self.pretrained = pretrained
        weights = VGG19_Weights.IMAGENET1K_V1 if pretrained else None
        features = vgg19(weights=weights).features[: max(VGG_LAYERS) + 1].eval()
        for p in features.parameters():
            p.requires_grad_(False)
        self.features = features

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        x = torch.cat([fake, real])  # one pass for both
        loss = fake.new_zeros(())
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in VGG_LAYERS:
                f, r = x.chunk(2)
                loss = loss + VGG_LAYERS[index] * F.l1_loss(f, r.detach())
        return loss


def make_perceptual_loss(allow_download: bool = False, lambda_vgg: float = 1.0) -> PerceptualLoss | None:
    """The VGG loss when it is used (``lambda_vgg > 0``) and its weights can be had, else ``None``.

    At ``lambda_vgg <= 0`` nothing uses the loss, so nothing is loaded and nothing is said; only a
    loss that would be used but cannot be loaded gives the one-time explanation (its L1 stand-in).
    """
    if lambda_vgg <= 0:
        return None
    try:
        return PerceptualLoss(allow_download=allow_download)
    except Exception as error:  # no cache and no network: say what is skipped, never silently
        warnings.warn(
            f"VGG19 perceptual loss unavailable ({type(error).__name__}: {error}). Training uses the "
            "L1 reconstruction term in its place (weight = the VGG weight). On Colab, set "
            "allow_download=True (train config vgg_download: true) to use the paper's loss.",
            stacklevel=2,
        )
        return None
