"""Mapping network (docs/architecture.md#mapping-network): noise z -> one style code per class, for multimodal
generation.

StarGAN-v2 style: a shared MLP trunk and one unshared head per class. It is trained in a second
stage with the reconstruction generator frozen; codes of classes absent from the mask are zeroed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _mlp(dims: list[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MappingNetwork(nn.Module):
    def __init__(self, num_classes: int, noise_dim: int, hidden: int, style_code_dim: int,
                 shared_layers: int = 4, head_layers: int = 4) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.shared = _mlp([noise_dim] + [hidden] * shared_layers, last_activation=True)
        self.unshared = nn.ModuleList(
            _mlp([hidden] * head_layers + [style_code_dim], last_activation=False) for _ in range(num_classes)
        )

    def forward(self, z: Tensor, present: Tensor | None = None) -> Tensor:
        """z (B, noise_dim), present (B, K) bool/0-1 -> styles (B, K, style_code_dim)."""
        h = self.shared(z)  # (B, hidden)
        styles = torch.stack([head(h) for head in self.unshared], dim=1)  # (B, K, D)
        if present is not None:
            styles = styles * present.to(styles.dtype).unsqueeze(-1)  # absent classes -> 0
        return styles
