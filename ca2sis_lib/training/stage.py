"""The two training stages as one generator forward each (wrapped as a module so DDP sees one call).

    reconstruction   styles from the real image, layout from its mask: the whole generator learns
    mapping          styles from noise through the mapping network, the only part that learns
                     (optionally also the codes of extra noise draws, for L_code)
"""

from __future__ import annotations

from torch import Tensor, nn

from ..masks import classes_present

STAGES = ("reconstruction", "mapping")


class GeneratorStep(nn.Module):
    """What one generator forward means in each stage; wrapping it lets DDP see a single call.

    Returns the image, the per-layer attention logits that L_att needs (``None`` for the SPADE
    family, which has no attention) and, in the mapping stage when ``code_noise`` is given, the
    mapping network's codes for those draws (what L_code compares with real codes; else ``None``).
    """

    def __init__(self, model: nn.Module, stage: str) -> None:
        super().__init__()
        self.model, self.stage = model, stage

    def forward(self, image: Tensor, one_hot: Tensor, noise: Tensor | None = None,
                code_noise: Tensor | None = None) -> tuple[Tensor, list[Tensor] | None, Tensor | None]:
        if self.stage == "reconstruction":
            out = self.model(image, one_hot)
            return out.image, out.logits, None
        present = classes_present(one_hot)  # (B, K): absent classes get zero codes
        styles = self.model.styles_from_noise(noise, present)  # (B, K, D)
        out = self.model.decode(self.model.embed_mask(one_hot), styles)
        codes = None if code_noise is None else self.model.styles_from_noise(code_noise)  # (M, K, D), all classes
        return out.image, out.logits, codes
