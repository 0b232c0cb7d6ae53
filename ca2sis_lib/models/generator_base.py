"""What every generator here implements the same way, written once: mask preparation, parameter counts.

CA²-SIS, SEAN and SPADE all take integer labels or a one-hot mask and report their size by part;
they mix in :class:`GeneratorMixin` and name their parts in ``counted_parts``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from ..masks import as_one_hot


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class GeneratorMixin:
    """``prepare_mask`` and ``parameter_counts`` for a generator with a ``config`` (num_classes, ignore_index)."""

    config: Any
    counted_parts: ClassVar[dict[str, str]] = {}  # name in parameter_counts() -> attribute holding that part

    def prepare_mask(self, mask: Tensor) -> Tensor:
        """Integer labels (B, H, W) or one-hot (B, K, H, W) -> validated float one-hot."""
        return as_one_hot(mask, self.config.num_classes, self.config.ignore_index)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part (``counted_parts``) and their ``total``."""
        counts = {name: count_parameters(getattr(self, attribute)) for name, attribute in self.counted_parts.items()}
        counts["total"] = sum(counts.values())
        return counts
