"""Configuration of a CA²-SIS model, with the authors' preset and a CPU-sized one.

``CA2SISConfig.paper()`` reproduces the authors' CelebAMask-HQ generator exactly
(docs/architecture.md#cross-attention-generator,
77,229,243 parameters); ``CA2SISConfig.tiny()`` keeps every structural element at 64×64 so a
laptop CPU can train it in minutes.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..contract import check_image_size

T = TypeVar("T")


def config_from_dict(cls: type[T], data: Mapping[str, Any], what: str | None = None,
                     convert: Callable[[str, Any], Any] | None = None) -> T:
    """``cls(**data)`` for a dataclass config, refusing keys it does not have.

    ``what`` names the config in the error (default: the class name); ``convert(key, value)``, when
    given, turns each saved value into the field's type (e.g. a list of dicts into stage configs).
    """
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {what or cls.__name__} keys {unknown}; valid keys: {sorted(known)}")
    return cls(**{k: convert(k, v) if convert else v for k, v in data.items()})


def as_field_type(hint: Any, key: str, value: Any, what: str = "config key") -> Any:
    """Give a value the type its field is annotated with (``int``, ``float``, ``bool``, one of them or
    None, or a fixed-length tuple of numbers); other annotations pass the value on. YAML (1.1) reads
    ``8e-4`` and ``1e5`` as strings, so ``--set lr_g=8e-4`` would otherwise reach Adam as text; and
    ``--set model_overrides.num_classes=abc`` would fail deep inside as a TypeError. ``what`` names
    the field's kind in the error ("training config key", "model_overrides key")."""
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return None
    if typing.get_origin(hint) is tuple:
        return value if Ellipsis in args else _as_tuple(args, key, value, what)
    kinds = [t for t in args or (hint,) if t is not type(None)]
    if len(kinds) != 1 or kinds[0] not in (bool, int, float):
        return value
    kind = kinds[0]
    if kind is bool or isinstance(value, bool):
        if kind is not bool or not isinstance(value, bool):
            raise ValueError(f"{what} {key!r} expects {'true or false' if kind is bool else 'a number'}, got {value!r}")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {key!r} expects {'a whole number' if kind is int else 'a number'}, "
                         f"got {value!r}") from None
    if kind is float:
        return number
    if not number.is_integer():
        raise ValueError(f"{what} {key!r} expects a whole number, got {value!r}")
    return int(number)


def _as_tuple(kinds: tuple[Any, ...], key: str, value: Any, what: str) -> tuple[Any, ...]:
    """E.g. ``betas``: a list of exactly as many numbers as the field's annotation has."""
    if not isinstance(value, (list, tuple)) or len(value) != len(kinds):
        raise ValueError(f"{what} {key!r} expects a list of {len(kinds)} numbers, e.g. {key}=[0.0,0.9], got {value!r}")
    return tuple(as_field_type(kind, key, item, what) for kind, item in zip(kinds, value))


def check_at_least(config: object, minimum: int, *names: str) -> None:
    """Raise ``ValueError`` naming the valid range for each integer field below ``minimum``."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_ignore_index(ignore_index: int | None, num_classes: int) -> None:
    """The ignore label must not be a real class id (that class would silently vanish)."""
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index={ignore_index} is a real class id (classes are 0..{num_classes - 1}): that class would "
            f"vanish from every mask; use a value outside [0, {num_classes}), e.g. 255 or -1, or None"
        )


class ConfigDictMixin:
    """to_dict / from_dict for flat frozen dataclass configs (the SPADE family's)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        return config_from_dict(cls, data)


@dataclass(frozen=True)
class StageConfig:
    """One generator stage: ResBlock(c_in -> channels, up?) then a SpatialTransformer
    (docs/architecture.md#cross-attention-generator)."""

    channels: int  # output channels of the ResBlock (= transformer width c)
    heads: int  # attention heads; inner width = heads * head_dim
    head_dim: int
    self_attention: bool  # stages 1-3 of the paper have self-attention, 4-5 cross only
    upsample: bool  # nearest x2 inside the ResBlock

    @property
    def inner(self) -> int:
        return self.heads * self.head_dim


ATTENTION_BACKENDS = ("sdpa", "reference")


@dataclass(frozen=True)
class CA2SISConfig:
    image_size: int = 256
    num_classes: int = 19  # K, background (class 0) included
    exclude_background: bool = True  # drop class 0 before the mask embedder (docs/architecture.md#mask-embedder)
    ignore_index: int | None = None  # label value that belongs to no class (e.g. 255)
    # mask embedder (docs/architecture.md#mask-embedder): channels resized to embed_resolution²,
    # then Linear(S² -> token_size²)
    embed_resolution: int = 128
    # grouped style encoder (docs/architecture.md#grouped-style-encoder)
    style_features_per_class: int = 4  # f
    style_downsamples: int = 6
    style_upsamples: int = 5
    style_dim: int = 256  # D per level; the code is style_upsamples * D wide
    style_class_aligned: bool = False  # ablation: concatenate skips per class (not the authors')
    # generator (docs/architecture.md#cross-attention-generator)
    input_channels: int = 512  # C0, the 1x1 conv of the mask tokens
    stages: tuple[StageConfig, ...] = field(default_factory=tuple)
    norm_groups: int = 32
    ff_mult: int = 4
    # mapping network (docs/architecture.md#mapping-network)
    noise_dim: int = 16
    mapping_hidden: int = 512
    mapping_shared_layers: int = 4
    mapping_head_layers: int = 4
    # execution (no effect on the function the model computes)
    attention_backend: str = "sdpa"
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("config needs at least one generator stage")
        check_at_least(self, 1, "embed_resolution", "style_features_per_class", "style_downsamples", "style_dim",
                       "input_channels", "norm_groups", "ff_mult", "noise_dim", "mapping_hidden",
                       "mapping_shared_layers", "mapping_head_layers")
        for i, stage in enumerate(self.stages):
            for name in ("channels", "heads", "head_dim"):
                if getattr(stage, name) < 1:
                    raise ValueError(f"stage {i}: {name} must be an integer >= 1, got {getattr(stage, name)!r}")
        check_ignore_index(self.ignore_index, self.num_classes)
        check_image_size(self.image_size)
        size = self.image_size
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if size % (2**self.style_downsamples):
            raise ValueError(
                f"image_size {size} is not divisible by 2**style_downsamples = {2**self.style_downsamples}"
            )
        if not 1 <= self.style_upsamples <= self.style_downsamples:
            raise ValueError("style_upsamples must be in [1, style_downsamples] (equal: finest style at full size)")
        if size % (2**self.num_upsamples):
            raise ValueError(f"image_size {size} is not divisible by 2**{self.num_upsamples} stage upsamplings")
        if self.attention_backend not in ATTENTION_BACKENDS:
            raise ValueError(f"attention_backend must be one of {ATTENTION_BACKENDS}, got {self.attention_backend!r}")
        widths = [self.input_channels] + [s.channels for s in self.stages]
        for width in widths:
            if width % self.norm_groups:
                raise ValueError(f"channel width {width} is not divisible by norm_groups={self.norm_groups}")

    # -- derived sizes -----------------------------------------------------------------------
    @property
    def num_upsamples(self) -> int:
        return sum(s.upsample for s in self.stages)

    @property
    def token_size(self) -> int:
        """Side of the generator's first feature map; each mask token is viewed as token_size²."""
        return self.image_size // 2**self.num_upsamples

    @property
    def embed_classes(self) -> int:
        """K' = classes seen by the mask embedder (K-1 when the background is excluded)."""
        return self.num_classes - int(self.exclude_background)

    @property
    def style_code_dim(self) -> int:
        return self.style_upsamples * self.style_dim

    # -- presets ----------------------------------------------------------------------------
    @classmethod
    def paper(cls, **overrides: Any) -> "CA2SISConfig":
        """The authors' CelebAMask-HQ model: 256², K = 19, background excluded
        (docs/architecture.md#cross-attention-generator)."""
        stages = (
            StageConfig(256, 8, 64, self_attention=True, upsample=False),  # res2/cross2 @16²
            StageConfig(128, 8, 64, self_attention=True, upsample=True),  # res3/cross3 @32²
            StageConfig(64, 8, 64, self_attention=True, upsample=True),  # res4/cross4 @64²
            StageConfig(32, 8, 64, self_attention=False, upsample=True),  # res5/cross5 @128²
            StageConfig(32, 4, 32, self_attention=False, upsample=True),  # res6/cross6 @256²
        )
        return dataclasses.replace(cls(stages=stages), **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> "CA2SISConfig":
        """64² on a CPU: every structural element of the paper, about 2.7 M generator parameters."""
        stages = (
            StageConfig(128, 4, 32, self_attention=True, upsample=False),  # @16²
            StageConfig(64, 4, 32, self_attention=True, upsample=True),  # @32²
            StageConfig(32, 2, 32, self_attention=False, upsample=True),  # @64²
        )
        base = cls(
            image_size=64,
            num_classes=12,
            # The mask at full 64² (the paper's 128 is half its 256² image): halved, nearest
            # resizing drops eyes and shifts edges; a class-mean-colour painter given the 32² mask
            # scores SSIM 0.76-0.79 against 0.86 with the full mask (see
            # docs/training_recipes.md#where-the-ssim-target-sits-two-references).
            embed_resolution=64,
            style_features_per_class=4,
            # The finest style level read out at full 64² (3 down, 3 up). With the paper's ratio
            # (one level fewer up than down) it is read at 32² from 16² information, where an eye
            # covers half a pixel: the encoder lost small parts' colours
            # (docs/training_recipes.md#stated-deviations-from-the-authors).
            style_downsamples=3,
            style_upsamples=3,
            style_dim=64,
            input_channels=256,
            stages=stages,
            mapping_hidden=256,
        )
        return dataclasses.replace(base, **overrides)

    # -- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CA2SISConfig":
        def convert(key: str, value: Any) -> Any:
            if key != "stages":
                return value
            return tuple(s if isinstance(s, StageConfig) else StageConfig(**s) for s in value)

        return config_from_dict(cls, data, convert=convert)
