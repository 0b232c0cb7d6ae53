"""Image-quality metrics for reconstructions and edits.

Images are model outputs in [-1, 1]; every metric maps them to [0, 1] first (data range 1), as
the SEAN/CA²-SIS protocol does. PSNR, SSIM and RMSE need no weights. LPIPS and FID/KID need
pretrained networks: ``perceptual_metrics`` uses torchmetrics when those weights are available
and otherwise reports ``"unavailable: <reason>"`` instead of a number — never a silent zero.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .hub import hub_file_cached


def to_unit(image: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], float32."""
    return ((image.float() + 1) / 2).clamp(0, 1)


def rmse(a: Tensor, b: Tensor) -> Tensor:
    """Per-image root mean squared error in [0, 1] units, (B,)."""
    return (to_unit(a) - to_unit(b)).square().flatten(1).mean(1).sqrt()


def psnr(a: Tensor, b: Tensor, eps: float = 1e-10) -> Tensor:
    """Per-image PSNR in dB with data range 1, (B,). Identical images give +inf."""
    mse = (to_unit(a) - to_unit(b)).square().flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(eps)).where(mse > 0, torch.full_like(mse, float("inf")))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-image SSIM (Wang et al. 2004): 11×11 Gaussian window, σ = 1.5, valid convolution,
    computed per channel and averaged, (B,)."""
    x, y = to_unit(a).double(), to_unit(b).double()  # float64: variances are small differences
    channels = x.shape[1]
    w = _gaussian_window(window, sigma).to(x)[None, None].repeat(channels, 1, 1, 1)  # (C, 1, k, k)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, w, groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).float()


def reconstruction_metrics(fake: Tensor, real: Tensor) -> dict[str, float]:
    """Mean PSNR / SSIM / RMSE over a batch."""
    return {"psnr": psnr(fake, real).mean().item(), "ssim": ssim(fake, real).mean().item(),
            "rmse": rmse(fake, real).mean().item()}


def segmentation_scores(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None
                        ) -> dict[str, Any]:
    """Pixel accuracy and per-class IoU of label maps (B, H, W); mIoU over classes present in
    the target or the prediction (a class in neither is left out, not counted as 1)."""
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    pred, target = pred[valid], target[valid]
    ious = {}
    for c in range(num_classes):
        inter = ((pred == c) & (target == c)).sum().item()
        union = ((pred == c) | (target == c)).sum().item()
        if union:
            ious[c] = inter / union
    return {"pixel_accuracy": (pred == target).float().mean().item(),
            "miou": sum(ious.values()) / max(1, len(ious)), "iou_per_class": ious}


ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's ImageNet AlexNet, the LPIPS backbone
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's FID Inception


def perceptual_metrics(fake: Tensor, real: Tensor, allow_download: bool = False) -> dict[str, Any]:
    """LPIPS, FID and KID through torchmetrics, or an explicit 'unavailable: …' per metric.

    Weights are used when cached in torch's hub folder; ``allow_download=True`` (Colab) lets
    torchmetrics fetch them. Protocol (written next to the numbers): images in [0, 1], resized by
    torchmetrics to the feature extractor's input (Inception-v3 pool3, 2048-d, for FID/KID;
    AlexNet for LPIPS); the sample count is the batch given here (FID on few samples is biased
    upwards: compare numbers only at equal counts).
    """
    results: dict[str, Any] = {"protocol": {"samples": int(len(fake)), "size": list(fake.shape[-2:]),
                                            "fid_features": "inception-v3 pool3 (2048)", "lpips_net": "alex"}}
    x, y = to_unit(fake), to_unit(real)
    if allow_download or hub_file_cached(ALEXNET_FILE):
        try:
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            results["lpips"] = float(LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)(x, y))
        except Exception as error:
            results["lpips"] = f"unavailable: {type(error).__name__}: {str(error)[:160]}"
    else:
        results["lpips"] = "unavailable: weights not cached (AlexNet for LPIPS)"
    if importlib.util.find_spec("torch_fidelity") is None:
        results["fid"] = results["kid"] = "unavailable: torch-fidelity not installed (pip install torch-fidelity)"
    elif allow_download or hub_file_cached(INCEPTION_FILE):
        try:
            from torchmetrics.image.fid import FrechetInceptionDistance
            from torchmetrics.image.kid import KernelInceptionDistance

            fid = FrechetInceptionDistance(feature=2048, normalize=True)
            kid = KernelInceptionDistance(subset_size=min(50, len(x)), normalize=True)
            for metric in (fid, kid):
                metric.update(y, real=True)
                metric.update(x, real=False)
            results["fid"], results["kid"] = float(fid.compute()), float(kid.compute()[0])
        except Exception as error:
            results["fid"] = results["kid"] = f"unavailable: {type(error).__name__}: {str(error)[:160]}"
    else:
        results["fid"] = results["kid"] = "unavailable: weights not cached (Inception-v3 for FID/KID)"
    return results
