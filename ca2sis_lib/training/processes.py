"""One process (plain ``python``) or one of many (``torchrun``): who this process is, and averages over all.

A run on many processes is data-parallel (DDP): every rank builds the same seeded models, draws its
own share of each step's batch, and averages gradients (DDP) and logged losses
(:func:`average_across_ranks`) over the ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_type: str) -> Dist:
    """One process (plain ``python``), or one of ``torchrun``'s (RANK / WORLD_SIZE in the environment)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return Dist()
    torch_dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def average_across_ranks(values: dict[str, float], dist: Dist, device: torch.device) -> dict[str, float]:
    if not dist.enabled:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    torch_dist.all_reduce(t)
    return dict(zip(values, (t / dist.world).tolist()))
