"""Record where a CA²-SIS model looks: cross-attention per layer, self-attention per query pixel.

One forward pass with ``return_attention=True`` already hands back every cross-attention layer's
pre-softmax logits (B, heads, K, h, w): how strongly each pixel's query matches each of the K class
codes. ``record_attention`` keeps them (and the input, mask and output) in an
``AttentionRecording``, which derives everything a figure needs:

    logits[layer]          (B, heads, K, h, w)  what the model computed, untouched
    probs(layer)           (B, heads, K, h, w)  softmax over the K classes, per head (sums to 1)
    mean_logits(layer)     (B, K, h, w)         head average of the logits: what L_att trains
(docs/architecture.md#attention-loss-l_att)
    mean_probs(layer)      (B, K, h, w)         head average of the per-head softmax weights
    target(layer)          (B, K, h, w)         the one-hot mask, nearest-resized: L_att's target

Self-attention is different: its full map is (HW × HW) per head, 16 M numbers per head at 64². So
during the same forward pass a hook keeps only the *input* of each self-attention layer (the
normalised tokens, (B, HW, inner)); ``self_attention_maps`` later asks the layer for the one row
we want with ``SelfAttention.map_for_query`` — one query against all keys, never the whole matrix.
Choosing another pixel therefore costs a few matrix-vector products, not a forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from ..losses import attention_loss
from ..masks import resize_mask
from ..models.interface import SemanticGenerator, is_cross_attention, model_device


def default_palette(num_classes: int) -> np.ndarray:
    """(K, 3) uint8 colours: matplotlib's tab20 (distinct for up to 20 classes), then repeated."""
    from matplotlib import colormaps

    colours = colormaps["tab20"](np.arange(num_classes) % 20)[:, :3]
    return (colours * 255).round().astype(np.uint8)


@dataclass
class AttentionRecording:
    """Everything one forward pass showed about attention, on the CPU in float32.

    Pixels are addressed in *image* coordinates (y, x) everywhere; ``layer_cell`` maps them to the
    coarser grid of a layer (a 16² layer sees a 64² image in 4×4 blocks).
    """

    image: Tensor  # (B, 3, H, W) the style image in [-1, 1]
    one_hot: Tensor  # (B, K, H, W) the mask; an all-zero column marks an ignored pixel
    output: Tensor  # (B, 3, H, W) the generated image, exactly as the model returned it
    logits: dict[str, Tensor]  # layer -> (B, heads, K, h, w) pre-softmax, coarse to fine
    self_attention_inputs: dict[str, Tensor]  # layer -> (B, h·w, inner): normed input of attn1
    attn_loss: float | None  # L_att of this batch, from the model's own (on-device) logits
    class_names: list[str] = field(default_factory=list)
    palette: np.ndarray | None = None  # (K, 3) uint8

    def __post_init__(self) -> None:
        k = self.num_classes
        if not self.class_names:
            self.class_names = [f"class {c}" for c in range(k)]
        if len(self.class_names) != k:
            raise ValueError(f"{len(self.class_names)} class names for a model with {k} classes")
        self.palette = default_palette(k) if self.palette is None else np.asarray(self.palette, dtype=np.uint8)
        if self.palette.shape != (k, 3):
            raise ValueError(f"palette must have shape ({k}, 3), got {self.palette.shape}")

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        return list(self.logits)

    @property
    def num_classes(self) -> int:
        return self.one_hot.shape[1]

    @property
    def batch_size(self) -> int:
        return self.image.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.image.shape[-2:])

    def heads(self, layer: str) -> int:
        return self.logits[layer].shape[1]

    def layer_size(self, layer: str) -> tuple[int, int]:
        return tuple(self.logits[layer].shape[-2:])

    def has_self_attention(self, layer: str) -> bool:
        return layer in self.self_attention_inputs

    # -- labels --------------------------------------------------------------------------------
    @property
    def labels(self) -> Tensor:
        """(B, H, W) class id per pixel; -1 where the pixel belongs to no class (ignore label)."""
        valid = self.one_hot.sum(dim=1) > 0
        return torch.where(valid, self.one_hot.argmax(dim=1), torch.full_like(valid, -1, dtype=torch.long))

    def target(self, layer: str) -> Tensor:
        """(B, K, h, w): the one-hot mask nearest-resized to ``layer``, exactly L_att's target."""
        return resize_mask(self.one_hot, self.layer_size(layer))

    # -- attention maps ------------------------------------------------------------------------
    def probs(self, layer: str) -> Tensor:
        """(B, heads, K, h, w): each head's softmax over the K classes; sums to 1 over K."""
        return self.logits[layer].softmax(dim=2)

    def mean_logits(self, layer: str) -> Tensor:
        """(B, K, h, w): logits averaged over heads, the quantity L_att compares with the mask."""
        return self.logits[layer].mean(dim=1)

    def mean_probs(self, layer: str) -> Tensor:
        """(B, K, h, w): the per-head softmax weights averaged over heads (still sums to 1)."""
        return self.probs(layer).mean(dim=1)

    def attention_map(self, layer: str, head: int | None = None, kind: str = "probs") -> Tensor:
        """(B, K, h, w) for one head, or the head average when ``head`` is None.

        ``kind="probs"``: softmax weights in [0, 1] (what the layer actually mixes with);
        ``kind="logits"``: pre-softmax scores (what L_att supervises).
        """
        if kind not in ("probs", "logits"):
            raise ValueError(f"kind must be 'probs' or 'logits', got {kind!r}")
        if head is not None and not 0 <= head < self.heads(layer):
            raise ValueError(f"layer {layer} has {self.heads(layer)} heads; head {head} does not exist")
        if head is None:
            return self.mean_probs(layer) if kind == "probs" else self.mean_logits(layer)
        per_head = self.probs(layer) if kind == "probs" else self.logits[layer]
        return per_head[:, head]

    def attention_argmax(self, layer: str, head: int | None = None) -> Tensor:
        """(B, h, w): the class each pixel's query matches best (argmax of the logits)."""
        return self.attention_map(layer, head, kind="logits").argmax(dim=1)

    def class_distribution(self, layer: str, cls: int, sample: int = 0) -> Tensor:
        """(K,): how the pixels of class ``cls`` (in ``layer``'s resized mask) split their attention over the
        classes, on average (head-averaged softmax weights; sums to 1). Rows of the class grid show one class's
        weight everywhere; this shows where one class's pixels put theirs. NaN when the class is absent."""
        inside = self.target(layer)[sample, cls] > 0  # (h, w)
        return self.mean_probs(layer)[sample][:, inside].mean(dim=1)  # (K, n) -> (K,)

    # -- one pixel -----------------------------------------------------------------------------
    def layer_cell(self, layer: str, y: int, x: int) -> tuple[int, int]:
        """Image pixel (y, x) -> the cell (row, col) of ``layer``'s grid that contains it."""
        height, width = self.image_size
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f"pixel ({y}, {x}) is outside the {height}×{width} image")
        h, w = self.layer_size(layer)
        return y * h // height, x * w // width

    def pixel_distribution(self, y: int, x: int, sample: int = 0, head: int | None = None) -> dict[str, Tensor]:
        """layer -> (K,): how pixel (y, x) of ``sample`` splits its attention over the classes.

        Layers with fewer heads than ``head`` + 1 give their head average instead.
        """
        out = {}
        for layer in self.layer_names:
            row, col = self.layer_cell(layer, y, x)
            probs = self.logits[layer][sample, :, :, row, col].softmax(dim=-1)  # (heads, K): one cell only
            out[layer] = probs[head] if head is not None and head < len(probs) else probs.mean(dim=0)
        return out


def _check_cross_attention(model: SemanticGenerator) -> None:
    if not is_cross_attention(model):
        raise ValueError(f"{type(model).__name__} has no attention to record: the SPADE family modulates by the "
                         "mask instead (see ca2sis_lib.models.spade.record_modulation); pass a CA²-SIS model")


@torch.no_grad()
def record_attention(model: SemanticGenerator, image: Tensor, mask: Tensor, class_names: list[str] | None = None,
                     palette: np.ndarray | None = None) -> AttentionRecording:
    """Run ``model(image, mask)`` once and keep its attention. The model's output is unchanged.

    image (B, 3, H, W) in [-1, 1]; mask as labels (B, H, W) or one-hot (B, K, H, W). The hooks on
    the self-attention layers only *read* their input (a forward hook returning None), and
    ``return_attention=True`` only collects logits the model computes anyway.
    """
    _check_cross_attention(model)
    device = model_device(model)
    captured: dict[str, Tensor] = {}

    def keep_input(name: str):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            captured[name] = inputs[0].detach().float().cpu()  # (B, h·w, inner), after norm1

        return hook

    handles = [layer.register_forward_hook(keep_input(name)) for name, layer in model.self_attention_layers().items()]
    try:
        image, mask = image.to(device), mask.to(device)
        out = model(image, mask, return_attention=True)
    finally:
        for handle in handles:
            handle.remove()
    one_hot = model.prepare_mask(mask)
    return AttentionRecording(
        image=image.detach().float().cpu(),
        one_hot=one_hot.cpu(),
        output=out.image.detach().cpu(),
        logits={name: lg.detach().float().cpu() for name, lg in out.attention.items()},
        self_attention_inputs=captured,
        attn_loss=float(attention_loss(out.logits, one_hot)),
        class_names=list(class_names or []),
        palette=palette,
    )


@torch.no_grad()
def self_attention_maps(model: SemanticGenerator, recording: AttentionRecording, y: int, x: int, sample: int = 0,
                        layers: list[str] | None = None) -> dict[str, Tensor]:
    """layer -> (heads, h, w): where image pixel (y, x) looks at each self-attention layer.

    Each map is one row of softmax(QKᵀ/√d), computed for that single query by
    ``SelfAttention.map_for_query`` from the input recorded during the forward pass. ``layers``
    restricts the answer to some self-attention layers (default: all of them).
    """
    _check_cross_attention(model)
    device = model_device(model)
    modules = model.self_attention_layers()
    names = list(recording.self_attention_inputs) if layers is None else list(layers)
    missing = [name for name in names if name not in recording.self_attention_inputs]
    if missing:
        raise ValueError(f"{missing} have no self-attention; these do: {list(recording.self_attention_inputs)}")
    maps = {}
    for name in names:
        tokens = recording.self_attention_inputs[name]
        h, w = recording.layer_size(name)
        row, col = recording.layer_cell(name, y, x)
        weights = modules[name].map_for_query(tokens[sample : sample + 1].to(device), row * w + col)  # (1, heads, hw)
        maps[name] = weights[0].float().cpu().reshape(-1, h, w)
    return maps
