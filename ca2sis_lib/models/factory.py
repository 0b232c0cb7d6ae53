"""Build a generator by family name: from a preset, or from the config dict a checkpoint stores.

    family "ca2sis" -> CA2SIS(CA2SISConfig)        family "sean" -> SEANGenerator(SEANConfig)

The mapping network of CA²-SIS (noise -> styles, docs/architecture.md#mapping-network) is trained in a second stage and
shipped in its own file, so state dicts are often split at :data:`MAPPING_PREFIX`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from torch import Tensor, nn

from .ca2sis import CA2SIS
from .config import CA2SISConfig, as_field_type
from .sean import SEANConfig, SEANGenerator

FAMILIES = ("ca2sis", "sean")
CONFIGS = {"ca2sis": CA2SISConfig, "sean": SEANConfig}
GENERATORS = {"ca2sis": CA2SIS, "sean": SEANGenerator}
MAPPING_PREFIX = "mapping."  # state-dict keys of CA²-SIS's mapping network
RANDOM_MAPPING = "random_mapping_reason"  # set by a loader on a CA²-SIS whose mapping network was never trained


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose from {FAMILIES}")


def model_config(family: str, preset: str, overrides: dict[str, Any] | None = None) -> CA2SISConfig | SEANConfig:
    """``model_config("ca2sis", "tiny", {"num_classes": 19})`` -> the config object."""
    _check_family(family)
    presets = {"tiny": CONFIGS[family].tiny, "paper": CONFIGS[family].paper}
    if preset not in presets:
        raise ValueError(f"unknown model preset {preset!r}; choose from {sorted(presets)}")
    overrides = overrides or {}
    fields = {f.name for f in dataclasses.fields(CONFIGS[family])}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown model_overrides keys {unknown} for the {family} family; valid keys: "
                         f"{sorted(fields)}")
    hints = typing.get_type_hints(CONFIGS[family])
    return presets[preset](**{k: as_field_type(hints[k], k, v, "model_overrides key") for k, v in overrides.items()})


def build_generator(family: str, config: CA2SISConfig | SEANConfig) -> nn.Module:
    _check_family(family)
    return GENERATORS[family](config)


def generator_from_config_dict(family: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild an (untrained) generator from a saved config dict, as checkpoints store it."""
    _check_family(family)
    return build_generator(family, CONFIGS[family].from_dict(config))


def split_mapping(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """A CA²-SIS state dict -> (everything but the mapping network, the mapping network alone)."""
    rest = {k: v for k, v in state.items() if not k.startswith(MAPPING_PREFIX)}
    mapping = {k: v for k, v in state.items() if k.startswith(MAPPING_PREFIX)}
    return rest, mapping


def mark_random_mapping(model: nn.Module, reason: str) -> None:
    """Record on a loaded CA²-SIS that its mapping network is the random initial one, and why (the
    loader knows: a reconstruction-stage checkpoint, a missing ``_mapping.pt``); noise-driven
    generation warns with ``reason`` (:func:`ca2sis_lib.editing.generate_from_noise`)."""
    setattr(model, RANDOM_MAPPING, reason)


def random_mapping_reason(model: nn.Module) -> str | None:
    """Why ``model``'s mapping network is random, or None when it was trained (or nothing is known)."""
    return getattr(model, RANDOM_MAPPING, None)
