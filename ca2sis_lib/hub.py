"""Pretrained weights in torch's hub cache (VGG19 for the perceptual loss, AlexNet and Inception for
LPIPS / FID / KID). Nothing here downloads: it only says whether a file is already there, so that a
caller can use the weights or report plainly that they are unavailable."""

from __future__ import annotations

from pathlib import Path

import torch


def hub_file_cached(name: str) -> bool:
    """True when ``<torch hub dir>/checkpoints/<name>`` exists (where torchvision and torchmetrics cache weights)."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / name).exists()
