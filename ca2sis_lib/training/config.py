"""What a training run is asked to do: :class:`TrainConfig`, its presets, and how values arrive.

A run's settings come from a preset, then a YAML file, then ``--set key=value`` overrides (later
wins); every value takes the type its key is annotated with, so ``--set lr_g=8e-4`` reaches Adam as
a number, not as the text YAML 1.1 makes of it. A preset's schedule scales with ``steps``: given
``steps`` but not ``decay_start``, the decay starts at the preset's fraction of the run
(``toy-ca2sis``: 1300 of 2000 steps, so ``--set steps=500`` decays from step 325).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..models.config import as_field_type, config_from_dict
from ..models.factory import FAMILIES, model_config
from .settings import validate_settings
from .stage import STAGES


@dataclass
class TrainConfig:
    family: str = "ca2sis"  # "ca2sis" (cross-attention) or "sean" (SPADE family with per-class styles)
    model_preset: str = "tiny"  # preset of the model config: "tiny" or "paper"
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"num_classes": 19}
    stage: str = "reconstruction"  # "mapping": second stage, only the mapping network learns
    pretrained: str = ""  # generator to start from (mapping stage): a checkpoint, a shipped file or name
    data: str = "toy"  # "toy" (procedural, generated on the fly) or a folder with images/ and labels/
    toy_samples: int = 4000  # size of the toy training split
    load_size: int | None = None  # folder data: resize the shorter side to this, then crop image_size
    augment: bool = True  # folder data: random crop and horizontal flip (the authors' recipe)
    allow_data_change: bool = False  # resume on another list of training files (recorded; refused otherwise)
    data_seed: int = 0
    batch_size: int = 8  # per process
    steps: int = 2000
    decay_start: int | None = None  # linear decay to 0 from this step on; None = constant lr
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.9)
    lambda_gan: float = 1.0
    lambda_fm: float = 10.0
    lambda_vgg: float = 10.0  # replaced by an L1 term of the same weight when VGG19 weights are missing
    lambda_l1: float = 0.0  # L1 reconstruction: a documented deviation for weight-free training
    lambda_attn: float = 1.0  # L_att; ignored by the SPADE family
    attn_pos_weight_max: float = 0.0  # > 0: class-balanced L_att (a documented deviation; 0 = the authors')
    lambda_diversity: float = 0.0  # mapping stage: -mean|G(z1) - sg(G(z2))|
    lambda_code: float = 0.0  # mapping stage: L_code, the mapped codes' distribution vs real images' codes
    code_samples: int = 256  # mapping stage: noise draws per step for L_code
    code_images: int = 1024  # mapping stage: training images whose encoded codes L_code compares with
    code_axes: int = 64  # mapping stage: L_code compares codes along the real codes' first principal axes
    vgg_download: bool = False  # allow torchvision to download VGG19 (Colab); never in tests
    regenerate_fake_for_d: bool = True  # the authors regenerate the fake for the D step
    ema_decay: float = 0.0  # 0 = no EMA generator
    ema_warmup: bool = False  # decay min(ema_decay, (1 + t) / (10 + t)) at step t: a short run's EMA forgets the init
    amp: str = "none"  # "none", "bf16" (CUDA or CPU) or "fp16" (CUDA, with a grad scaler)
    channels_last: bool = False  # NHWC layout: same maths, faster grouped convs on CPUs (benchmarks/bench.py)
    device: str = "auto"
    seed: int = 0
    out_dir: str = "runs/default"
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200
    num_workers: int = 0
    max_steps_this_run: int | None = None  # stop after this many steps (a session budget); resumable
    progress: bool = True

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; choose from {FAMILIES}")
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; choose from {STAGES}")
        if self.stage == "mapping" and (self.family != "ca2sis" or not self.pretrained):
            raise ValueError("the mapping stage needs family='ca2sis' and a pretrained generator checkpoint")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp must be 'none', 'bf16' or 'fp16', got {self.amp!r}")
        if isinstance(self.betas, (list, tuple)):
            self.betas = tuple(self.betas)
        validate_settings(self)  # every number in its range, or one error listing each problem with its range

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        hints = typing.get_type_hints(cls)
        return config_from_dict(cls, data, "training config", convert=lambda k, v: _as_type_of(hints[k], k, v))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data

    def model_config(self) -> Any:
        """The model config this run builds: ``model_preset`` of ``family``, with ``model_overrides``."""
        return model_config(self.family, self.model_preset, self.model_overrides)


def _as_type_of(hint: Any, key: str, value: Any) -> Any:
    return as_field_type(hint, key, value, "training config key")


PRESETS: dict[str, dict[str, Any]] = {
    # the authors' recipe (docs/training_recipes.md): batch 2, 50 epochs constant + 50 linear decay on 28k images
    "paper": dict(model_preset="paper", batch_size=2, load_size=286, steps=1_400_000, decay_start=700_000,
                  ema_decay=0.0, lambda_vgg=10.0, vgg_download=True, sample_every=5000, checkpoint_every=2500),
    # the shipped toy checkpoints: CPU-sized, with the L1 deviation so no VGG weights are needed and a
    # light GAN term (0.125: SSIM rewards the mean texture, the GAN asks for one of its own); the
    # CA²-SIS one trains L_att class-balanced and with weight 5 (stated deviations, see the README)
    "toy-ca2sis": dict(model_preset="tiny", batch_size=8, steps=2000, decay_start=1300, lr_g=4e-4, lr_d=8e-4,
                       lambda_gan=0.125, lambda_vgg=0.0, lambda_l1=20.0, lambda_fm=2.0, ema_decay=0.995,
                       regenerate_fake_for_d=False, lambda_attn=5.0, attn_pos_weight_max=200.0, channels_last=True),
    "toy-sean": dict(family="sean", model_preset="tiny", batch_size=8, steps=2000, decay_start=1300, lr_g=4e-4,
                     lr_d=8e-4, lambda_gan=0.125, lambda_vgg=0.0, lambda_l1=20.0, lambda_fm=2.0, ema_decay=0.995,
                     regenerate_fake_for_d=False, channels_last=True),
    # the second stage (docs/architecture.md#mapping-network) on the shipped toy generator: the mapping
    # network learns alone. L_code (its codes distributed like real faces' codes) carries it, a weak GAN
    # term and L_att refine; raw weights, no EMA (averaging an MLP's weights shrinks the spread of its
    # outputs); docs/training_recipes.md#the-mapping-network
    "toy-mapping": dict(stage="mapping", pretrained="ca2sis_tiny_toy", model_preset="tiny",
                        batch_size=8, steps=800, decay_start=500, lr_g=1e-3, lr_d=8e-4, lambda_vgg=0.0,
                        lambda_l1=0.0, lambda_fm=0.0, lambda_gan=0.1, lambda_code=10.0, lambda_diversity=0.0,
                        ema_decay=0.0, regenerate_fake_for_d=False, attn_pos_weight_max=200.0),
    # a few steps, for tests and the CI notebooks
    "smoke": dict(model_preset="tiny", batch_size=2, steps=4, toy_samples=16, lambda_vgg=0.0, lambda_l1=10.0,
                  log_every=1, sample_every=2, checkpoint_every=2, progress=False),
}


def resolve_config(preset: str = "toy-ca2sis", yaml_path: str | None = None,
                   overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Preset, then a YAML file, then command-line overrides (later wins)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    given = read_config_file(yaml_path) if yaml_path else {}
    given.update(overrides or {})
    return TrainConfig.from_dict({**PRESETS[preset], **given, **scaled_schedule(PRESETS[preset], given)})


def scaled_schedule(preset: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``{"decay_start": ...}`` at the preset's fraction of ``given["steps"]``, when ``steps`` is given
    and ``decay_start`` is not (and the preset decays); else ``{}``."""
    if "steps" not in given or "decay_start" in given or preset.get("decay_start") is None:
        return {}
    steps = _as_type_of(int, "steps", given["steps"])
    preset_steps = preset.get("steps", TrainConfig.steps)
    return {"decay_start": round(preset["decay_start"] * steps / preset_steps)}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML file of ``key: value`` lines (TrainConfig keys), as a dict; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"config file {path} is not a text file (byte {raw[error.start]:#04x} at offset "
                         f"{error.start} is not UTF-8): a config is YAML text, lines such as 'steps: 500'") from None
    try:
        loaded = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as error:
        raise ValueError(f"config file {path} is not valid YAML: {error}") from None
    except _DuplicateKey as duplicate:
        raise ValueError(f"config file {path}: {duplicate}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"config file {path} must be a mapping of training config keys (lines such as "
                         f"'steps: 500'), but it holds a {type(loaded).__name__}")
    return loaded


class _DuplicateKey(ValueError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *defaults' may be overridden: YAML's rule
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if not isinstance(key, typing.Hashable):
                continue  # the safe loader's own error names it
            if key in first_line:
                raise _DuplicateKey(f"key {key!r} appears twice (lines {first_line[key]} and {line}), and only one "
                                    "value can hold; delete the line you do not mean")
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["steps=500", "model_overrides.num_classes=19"]`` -> a nested dict of YAML-parsed values."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        parsed = yaml.safe_load(value)
        if "." in key:  # model_overrides.num_classes=19
            outer, inner = key.split(".", 1)
            if not isinstance(out.setdefault(outer, {}), dict):
                raise ValueError(f"--set {pair}: {outer} was set to {out[outer]!r} before; give {outer} either as a "
                                 f"whole or key by key ({outer}.KEY=VALUE)")
            out[outer][inner] = parsed
        else:
            out[key] = parsed
    return out
