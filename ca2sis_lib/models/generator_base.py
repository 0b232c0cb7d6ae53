"""What every generator here implements the same way, written once: mask preparation, parameter counts.

CA²-SIS, SEAN and SPADE all take integer labels or a one-hot mask and report their size by part;
they mix in :class:`GeneratorMixin` and name their parts in ``counted_parts``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from ..contract import check_image, check_mask_size, model_placement, prepare_image
from ..masks import as_one_hot


def count_parameters(module: nn.Module) -> int:
    """Every parameter of ``module`` (and its children), counted once."""
    return sum(p.numel() for p in module.parameters())


class GeneratorMixin:
    """``prepare_mask`` and ``parameter_counts`` for a generator with a ``config`` (num_classes, ignore_index)."""

    config: Any
    counted_parts: ClassVar[dict[str, str]] = {}  # name in parameter_counts() -> attribute holding that part

    @property
    def noise_dim(self) -> int:
        """Width of the noise z (B, noise_dim) the model's mapping network reads; 0: it has none (the SPADE family)."""
        return 0

    def prepare_mask(self, mask: Tensor, exclusive: bool = True) -> Tensor:
        """Integer labels (B, H, W) or one-hot (B, K, H, W) of the model's size -> validated float
        one-hot on the model's device and dtype (``exclusive=False``: a hand-composed 0/1 mask whose
        pixels may hold several classes or none)."""
        check_mask_size(mask, self.config.image_size)
        device, dtype = model_placement(self)  # type: ignore[arg-type]
        one_hot = as_one_hot(mask.to(device), self.config.num_classes, self.config.ignore_index, exclusive)
        return one_hot.to(dtype)

    def prepare_inputs(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The input contract of ``ca2sis_lib.contract`` for an (image, mask) pair -> (image, one-hot),
        both on the model's device and dtype."""
        check_image(image, mask, self.config.image_size)  # shapes, sizes and batch first: no arithmetic yet
        image = prepare_image(image, self.config.image_size, self)  # type: ignore[arg-type]
        return image, self.prepare_mask(mask)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part (``counted_parts``) and their ``total``."""
        counts = {name: count_parameters(getattr(self, attribute)) for name, attribute in self.counted_parts.items()}
        counts["total"] = sum(counts.values())
        return counts

    def parameters_without_mapping(self) -> int:
        """Parameters a reconstruction uses: every part but the mapping network (noise-driven styles only)."""
        counts = self.parameter_counts()
        return counts["total"] - counts.get("mapping", 0)
