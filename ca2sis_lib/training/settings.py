"""The valid range of every training setting, stated once in a table, checked when a
:class:`~.config.TrainConfig` is built.

:data:`SCHEMA` gives each numeric or text setting a rule (:class:`Whole`, :class:`Number`,
:class:`Pair`, :class:`Text`); :data:`RELATIONS` the few that compare two settings. One validator
reads both and writes every message from the rule itself ("steps=0 must be a whole number >= 1"),
so a range is never written twice (once to check, once to explain). All problems are reported at
once, so a bad ``--set`` fails in a second with ``error: ...`` instead of a ``ZeroDivisionError``
after a step of work. Types (``--set lr_g=8e-4`` is a number, not text) are given on the way in by
:func:`~ca2sis_lib.models.config.as_field_type`, from the dataclass annotations.

Why a table of our own and not pydantic or OmegaConf: the rules are four small frozen dataclasses
and one loop (this file); pydantic would be a new dependency of the library for them, its messages
are its own (``Input should be greater than or equal to 1``, a location tuple) and would need
rewriting to name the fix, and a ``TrainConfig`` would stop being a plain dataclass (``asdict``,
``replace`` and the saved YAML all rely on that). OmegaConf's structured configs check types but
not ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SEED_LIMIT = 2**32  # seeds are mixed with the step into 64-bit generator seeds


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _why(why: str) -> str:
    return f" ({why})" if why else ""


@dataclass(frozen=True)
class Whole:
    """A whole number in [low, high] (``high``: a number, the name of another setting, or None)."""

    low: int
    high: int | str | None = None
    optional: bool = False  # None allowed
    why: str = ""

    def problem(self, name: str, value: Any, cfg: Any) -> str | None:
        high = getattr(cfg, self.high) if isinstance(self.high, str) else self.high
        if isinstance(self.high, str) and not _is_int(high):
            return None  # the other setting's own rule reports it
        if self.optional and value is None:
            return None
        if _is_int(value) and value >= self.low and (high is None or value <= high):
            return None
        allowed = f">= {self.low}" if high is None else f"in [{self.low}, {high}]"
        return f"{name}={value!r} must be a whole number {allowed}{' or None' if self.optional else ''}{_why(self.why)}"


@dataclass(frozen=True)
class Number:
    """A finite number >= low (> low when ``low_open``), below ``high`` when given ([low, high))."""

    low: float
    high: float | None = None
    low_open: bool = False
    why: str = ""

    def accepts(self, value: Any) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return _is_number(value) and above and (self.high is None or value < self.high)

    def allowed(self) -> str:
        if self.high is not None:
            return f"in [{self.low:g}, {self.high:g})"
        return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"

    def problem(self, name: str, value: Any, cfg: Any) -> str | None:
        return None if self.accepts(value) else f"{name}={value!r} must be {self.allowed()}{_why(self.why)}"


@dataclass(frozen=True)
class Pair:
    """Two numbers, each meeting ``each`` (e.g. Adam's betas)."""

    each: Number
    example: str

    def problem(self, name: str, value: Any, cfg: Any) -> str | None:
        if isinstance(value, tuple) and len(value) == 2 and all(self.each.accepts(v) for v in value):
            return None
        return f"{name}={value!r} must be a pair of numbers {self.each.allowed()}, e.g. {self.example}"


@dataclass(frozen=True)
class Text:
    """A non-empty text."""

    def problem(self, name: str, value: Any, cfg: Any) -> str | None:
        return None if isinstance(value, str) and value else f"{name}={value!r} must be a non-empty text"


@dataclass(frozen=True)
class Relation:
    """``left op right`` between two settings (checked once both are valid on their own), when ``applies``."""

    left: str
    op: str  # "<=" or ">="
    right: str
    why: str
    applies: str = ""  # "data=toy": only for the toy data

    def problem(self, cfg: Any) -> str | None:
        a, b = getattr(cfg, self.left), getattr(cfg, self.right)
        key, _, wanted = self.applies.partition("=")
        if not (_is_int(a) and _is_int(b)) or (key and getattr(cfg, key) != wanted):
            return None
        if (a <= b) if self.op == "<=" else (a >= b):
            return None
        return f"{self.left}={a} must be {self.op} {self.right}={b} ({self.why})"


COUNT, WEIGHT = Whole(1), Number(0, why="0 switches the term off")
SCHEMA: dict[str, Whole | Number | Pair | Text] = {
    **dict.fromkeys(("steps", "batch_size", "log_every", "sample_every", "checkpoint_every", "toy_samples",
                     "code_images", "code_axes"), COUNT),
    "num_workers": Whole(0),
    "code_samples": Whole(2, why="noise draws per step for L_code"),
    "max_steps_this_run": Whole(1, optional=True),
    "load_size": Whole(1, optional=True),
    "seed": Whole(0, SEED_LIMIT - 1),
    "data_seed": Whole(0, SEED_LIMIT - 1),
    "decay_start": Whole(0, "steps", optional=True,
                         why="the step at which the learning rate starts its linear decay to 0; None = constant"),
    "lr_g": Number(0, low_open=True),
    "lr_d": Number(0, low_open=True),
    "betas": Pair(Number(0, 1), "[0.0, 0.9]"),
    **dict.fromkeys(("lambda_gan", "lambda_fm", "lambda_vgg", "lambda_l1", "lambda_attn", "attn_pos_weight_max",
                     "lambda_diversity", "lambda_code"), WEIGHT),
    "ema_decay": Number(0, 1, why="0 = no EMA generator; 0.995 or 0.999 are usual"),
    **dict.fromkeys(("data", "out_dir", "device"), Text()),
}
RELATIONS = (
    Relation("code_samples", "<=", "code_images", "each draw is compared with a different real image's codes"),
    Relation("toy_samples", ">=", "batch_size", "one batch at least", applies="data=toy"),
)


def _model_and_device(cfg: Any) -> list[str]:
    """The settings whose range lives elsewhere: the model overrides (the model config's own checks)
    and the device (torch's)."""
    problems = []
    if not isinstance(cfg.model_overrides, dict):
        problems.append(f"model_overrides={cfg.model_overrides!r} must be a mapping of model config keys, e.g. "
                        "{num_classes: 19}")
    else:
        try:
            cfg.model_config()  # each override of the model's type and range, before any work
        except ValueError as error:
            problems.append(str(error))
    if isinstance(cfg.device, str) and cfg.device and cfg.device != "auto":
        import torch

        try:
            torch.device(cfg.device)
        except (RuntimeError, ValueError):
            problems.append(f"device={cfg.device!r} is not a device: use 'auto', 'cpu', 'cuda', 'cuda:1', 'mps' ...")
    return problems


def validate_settings(cfg: Any) -> None:
    """Raise ``ValueError`` listing every setting of ``cfg`` (a TrainConfig, typed loosely: config.py
    imports this module) that breaks its rule in :data:`SCHEMA` or :data:`RELATIONS`, with the rule."""
    problems = _model_and_device(cfg)
    problems += [p for name, rule in SCHEMA.items() if (p := rule.problem(name, getattr(cfg, name), cfg))]
    problems += [p for relation in RELATIONS if (p := relation.problem(cfg))]
    if problems:
        raise ValueError("invalid training settings: " + "; ".join(problems))
