"""CA²-SIS: semantic image synthesis with class-adaptive cross-attention (Fontanini et al. 2025).

    image, mask ──► GroupedStyleEncoder ──► styles (B, K, 1280)  one code per class
    mask ─────────► MaskEmbedder ─────────► tokens (B, K-1, 256) one shape per class
    tokens ──► 1x1 conv ──► 5 × [ResBlock → SpatialTransformer(self?, cross(styles))] ──► RGB

(docs/architecture.md#grouped-style-encoder, #mask-embedder and #cross-attention-generator.)
The mask reaches the image only through the tokens: every cross-attention layer lets each pixel
choose among the K class codes, and the attention loss L_att (docs/architecture.md#attention-loss-l_att)
teaches those choices to follow the mask. Generation therefore also works *without* a mask, from
tokens and styles alone — which is what every editing operation
(docs/architecture.md#editing-operations) and noise-driven generation
(docs/architecture.md#mapping-network) do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..contract import InputError, prepare_code
from .attention import PROCESSORS, SelfAttention
from .blocks import ResBlock, SpatialTransformer
from .config import CA2SISConfig
from .generator_base import GeneratorMixin
from .mapping import MappingNetwork
from .mask_embedder import MaskEmbedder, TokenToFeatures
from .style_encoder import GroupedStyleEncoder

CHUNK_TOKENS = 4096  # memory mode: tokens per chunk after self-attention (a 64×64 map at a time)


@dataclass
class CA2SISOutput:
    image: Tensor  # (B, 3, H, W) in [-1, 1]
    logits: list[Tensor]  # per cross-attention layer, pre-softmax (B, heads, K, h, w): what L_att needs
    attention: dict[str, Tensor] | None = None  # the same logits by layer name ("cross@32"), on request
    styles: Tensor | None = None  # (B, K, style_code_dim)
    tokens: Tensor | None = None  # (B, K', L)


class CrossAttentionGenerator(nn.Module):
    """Tokens and styles -> image. Stage i = ResBlock then SpatialTransformer
    (docs/architecture.md#cross-attention-generator)."""

    def __init__(self, config: CA2SISConfig) -> None:
        super().__init__()
        self.config = config
        self.input_conv = TokenToFeatures(config.embed_classes, config.token_size, config.input_channels)
        self.stages = nn.ModuleList()
        c_in = config.input_channels
        for stage in config.stages:
            block = nn.Module()
            block.res = ResBlock(c_in, stage.channels, stage.upsample, config.norm_groups)
            block.transformer = SpatialTransformer(
                stage.channels, stage.heads, stage.head_dim, config.style_code_dim, stage.self_attention,
                config.norm_groups, config.ff_mult, config.attention_backend,
            )
            if config.gradient_checkpointing:  # memory mode: cross-attention + feed-forward in token chunks too
                block.transformer.block.chunk_tokens = CHUNK_TOKENS
            self.stages.append(block)
            c_in = stage.channels
        self.out_conv = nn.Conv2d(c_in, 3, 1)

    def forward(self, tokens: Tensor, styles: Tensor) -> tuple[Tensor, list[Tensor]]:
        """tokens (B, K', L), styles (B, K, D) -> image (B, 3, H, W), logits per layer."""
        x = self.input_conv(tokens)  # (B, C0, L0, L0)
        all_logits = []
        use_checkpoint = self.config.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for stage in self.stages:
            x = stage.res(x)  # (B, c, h, w), h doubles on upsampling stages
            if use_checkpoint:  # recompute the transformer in backward: less memory, more time
                x, logits = checkpoint(stage.transformer, x, styles, use_reentrant=False)
            else:
                x, logits = stage.transformer(x, styles)
            all_logits.append(logits)  # (B, heads, K, h, w)
        return torch.tanh(self.out_conv(x)), all_logits


class CA2SIS(GeneratorMixin, nn.Module):
    counted_parts = {"mask_embedder": "mask_embedder", "style_encoder": "style_encoder", "mapping": "mapping",
                     "decoder": "generator"}

    def __init__(self, config: CA2SISConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_embedder = MaskEmbedder(config.embed_resolution, config.token_size, config.exclude_background)
        self.style_encoder = GroupedStyleEncoder(
            config.num_classes, config.style_features_per_class, config.style_downsamples,
            config.style_upsamples, config.style_dim, config.style_class_aligned,
        )
        self.generator = CrossAttentionGenerator(config)
        self.mapping = MappingNetwork(
            config.num_classes, config.noise_dim, config.mapping_hidden, config.style_code_dim,
            config.mapping_shared_layers, config.mapping_head_layers,
        )

    @property
    def noise_dim(self) -> int:
        """Width of the noise z (B, noise_dim) the mapping network reads."""
        return self.config.noise_dim

    # -- the parts (every editing operation composes these; each checks its inputs, see contract.py) ---
    def encode_style(self, image: Tensor, mask: Tensor) -> Tensor:
        """image (B, 3, H, W) in [-1, 1], labels or one-hot mask -> styles (B, K, style_code_dim)."""
        image, one_hot = self.prepare_inputs(image, mask)
        return self.style_encoder(image, one_hot)

    def embed_mask(self, mask: Tensor) -> Tensor:
        """Labels or a (possibly hand-composed, 0/1) one-hot mask (B, K, H, W) -> shape tokens (B, K', L)."""
        return self.mask_embedder(self.prepare_mask(mask, exclusive=False))

    def styles_from_noise(self, z: Tensor, present: Tensor | None = None) -> Tensor:
        """Noise (B, noise_dim) and class presence (B, K) -> styles (B, K, style_code_dim) (mapping network)."""
        c = self.config
        z = prepare_code(z, (None, c.noise_dim), "noise z", self, f"noise_dim={c.noise_dim}")
        if present is not None:
            if tuple(present.shape) != (z.shape[0], c.num_classes):
                raise InputError(f"present must have shape (B, K) = ({z.shape[0]}, {c.num_classes}), "
                                 f"got {tuple(present.shape)}")
            present = present.to(z.device)
        return self.mapping(z, present)

    def check_layout(self, tokens: Tensor, styles: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (B, K', token_size²) and styles (B, K, style_code_dim) of one batch, on the model's device."""
        c = self.config
        tokens = prepare_code(tokens, (None, c.embed_classes, c.token_size**2), "tokens", self,
                              f"K'={c.embed_classes} tokens of {c.token_size}² values; make them with embed_mask")
        styles = prepare_code(styles, (tokens.shape[0], c.num_classes, c.style_code_dim), "styles", self,
                              f"K={c.num_classes} codes of style_code_dim={c.style_code_dim}, one batch with tokens")
        return tokens, styles

    def decode(self, tokens: Tensor, styles: Tensor, return_attention: bool = False) -> CA2SISOutput:
        """Tokens and styles -> image, and the per-layer attention logits that L_att
        (:func:`ca2sis_lib.losses.attention_loss`) compares with the mask."""
        tokens, styles = self.check_layout(tokens, styles)
        return self._decode(tokens, styles, return_attention)

    def _decode(self, tokens: Tensor, styles: Tensor, return_attention: bool) -> CA2SISOutput:
        image, logits = self.generator(tokens, styles)
        attention = dict(zip(self.attention_layer_names(), logits)) if return_attention else None
        return CA2SISOutput(image=image, logits=logits, attention=attention, styles=styles, tokens=tokens)

    def forward(self, image: Tensor, mask: Tensor, return_attention: bool = False) -> CA2SISOutput:
        """Reconstruction: styles from ``image``, layout from ``mask`` (labels or one-hot); checked once."""
        image, one_hot = self.prepare_inputs(image, mask)
        styles = self.style_encoder(image, one_hot)  # (B, K, D)
        tokens = self.mask_embedder(one_hot)  # (B, K', L)
        return self._decode(tokens, styles, return_attention)

    # -- helpers --------------------------------------------------------------------------
    def attention_layer_names(self) -> list[str]:
        size = self.config.token_size
        names = []
        for stage in self.config.stages:
            size *= 2 if stage.upsample else 1
            names.append(f"cross@{size}")
        return names

    def self_attention_layers(self) -> dict[str, SelfAttention]:
        return {
            name: stage.transformer.block.attn1
            for name, stage in zip(self.attention_layer_names(), self.generator.stages)
            if stage.transformer.block.has_self_attention
        }

    def set_attention_backend(self, name: str) -> None:
        """Swap the self-attention arithmetic ('sdpa' or 'reference'); weights are untouched."""
        if name not in PROCESSORS:
            raise ValueError(f"unknown attention backend {name!r}; choose from {sorted(PROCESSORS)}")
        for layer in self.self_attention_layers().values():
            layer.processor = PROCESSORS[name]()
