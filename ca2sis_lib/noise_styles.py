"""Styles from noise, beside the mapping network: a sampler that needs no training, and how varied samples are.

    sampler = ClassGaussian.fit(model, images, labels)                # per class: mean and spread of real codes
    faces = sampler.generate(model, labels, num_samples=6, seed=0)    # (S, B, 3, H, W) in [-1, 1]
    sample_diversity(faces)                                           # mean |x_a − x_b| in [0, 1] pixel values

The per-class Gaussian draws class k's code as μ_k + σ_k ⊙ ε, ε ~ N(0, I), where μ_k and σ_k are the mean
and per-dimension standard deviation of the style encoder's codes of class k over real faces that show it
(docs/architecture.md#mapping-network; notebook 05 compares it with the mapping network). It ignores how
dimensions and classes vary together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .masks import classes_present
from .models.interface import SemanticGenerator


def sample_diversity(samples: Tensor) -> float:
    """Samples (S, B, 3, H, W) in [-1, 1], S per layout -> the mean absolute difference between two samples of
    one layout, over every pair of samples, in pixel values in [0, 1] (0 = identical, 1 = black vs white)."""
    s = len(samples)
    if s < 2:
        raise ValueError(f"diversity needs at least two samples per layout, got {s}")
    pairs = [(a, b) for a in range(s) for b in range(a + 1, s)]
    return float(np.mean([(samples[a] - samples[b]).abs().mean().item() / 2 for a, b in pairs]))


@dataclass
class ClassGaussian:
    """One Gaussian per class over the style encoder's codes of real faces: ``mean`` and ``spread`` (K, D)."""

    mean: Tensor  # (K, D)
    spread: Tensor  # (K, D): per-dimension standard deviation; 0 for a class seen in fewer than two faces

    @classmethod
    @torch.no_grad()
    def fit(cls, model: SemanticGenerator, images: Tensor, labels: Tensor) -> ClassGaussian:
        """Fit to the codes of ``images`` (F, 3, H, W) with masks ``labels`` (F, H, W); a class absent from
        every face gets the mean of its (empty-region) codes and no spread."""
        one_hot = model.prepare_mask(labels)  # (F, K, H, W)
        codes = model.encode_style(images, one_hot)  # (F, K, D)
        present = classes_present(one_hot)  # (F, K)
        mean = torch.stack([codes[present[:, k], k].mean(0) if present[:, k].any() else codes[:, k].mean(0)
                            for k in range(codes.shape[1])])  # (K, D)
        spread = torch.stack([codes[present[:, k], k].std(0) if present[:, k].sum() > 1 else torch.zeros_like(mean[k])
                              for k in range(codes.shape[1])])  # (K, D)
        return cls(mean, spread)

    @torch.no_grad()
    def generate(self, model: SemanticGenerator, labels: Tensor, num_samples: int = 4, seed: int = 0) -> Tensor:
        """``num_samples`` faces per layout of ``labels`` (B, H, W) -> (S, B, 3, H, W) in [-1, 1]; the codes of
        classes absent from a layout stay zero, as the mapping network's do."""
        one_hot = model.prepare_mask(labels)  # (B, K, H, W)
        here = classes_present(one_hot)[..., None]  # (B, K, 1)
        tokens = model.embed_mask(one_hot)
        g = torch.Generator().manual_seed(seed)
        draw = lambda: torch.randn(self.mean.shape, generator=g).to(self.mean.device)  # ε, (K, D)
        return torch.stack([model.decode(tokens, here * (self.mean + self.spread * draw())).image
                            for _ in range(num_samples)])


__all__ = ["ClassGaussian", "sample_diversity"]
