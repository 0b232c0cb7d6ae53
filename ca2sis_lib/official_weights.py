"""The authors' released weights ↔ our models: name tables, loading, exporting (docs/architecture.md#parameter-counts).

Our modules have readable names (``generator.stages.2.transformer.block.attn2.to_k``); the
authors' state dict uses theirs (``cross4.transformer_blocks.0.attn2.to_k``). The layers, their
order and every tensor's shape are the same (docs/architecture.md#the-whole-model-at-a-glance), so converting a
checkpoint is pure
renaming, written below as a short table of prefix rewrite rules. The authors' names and shapes
ship with the package (``official_state_dict.json``, data only, read off their code): every load
and every export is checked against it, key by key and shape by shape, so a checkpoint either
converts exactly — each tensor used once, in the one place it belongs — or fails with a list of
what is missing, unexpected or mis-shaped.

    model = load_official("latest_net_G.pth")        # CA2SIS, paper preset, the authors' weights
    torch.save(export_official(model), "ours_as_theirs.pth")   # and back, bit for bit
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import torch
from torch import Tensor, nn

from .checkpoint_io import check_weights
from .contract import unreadable_checkpoint_reason
from .models import CA2SIS, CA2SISConfig
from .models.discriminator import MultiscaleDiscriminator
from .models.factory import MAPPING_PREFIX

__all__ = [
    "DISCRIMINATOR_NAMES",
    "GENERATOR_NAMES",
    "NameTable",
    "check_against_manifest",
    "convert_official",
    "convert_official_discriminator",
    "export_official",
    "export_official_discriminator",
    "load_official",
    "load_official_discriminator",
    "official_manifest",
    "paper_config",
    "read_state_dict",
]

MANIFEST_FILE = "official_state_dict.json"
StateDict = dict[str, Tensor]
Source = str | os.PathLike | Mapping[str, Any]


def official_manifest() -> dict[str, Any]:
    """The authors' parameter names and shapes, shipped inside the package.

    Keys: ``generator`` and ``discriminator`` (name -> shape list, in the authors' order),
    ``generator_param_total``, ``discriminator_param_total`` and ``about``. A fresh dict each call.
    """
    text = resources.files("ca2sis_lib").joinpath(MANIFEST_FILE).read_text(encoding="utf-8")
    return json.loads(text)


# -- name tables --------------------------------------------------------------------------------

_FIELD = re.compile(r"\{(\w+)(?:\+(\d+))?\}")  # {i} or {i+2}: an index, shifted on the authors' side


def _compile(template: str) -> tuple[re.Pattern[str], dict[str, int]]:
    """'res{i+2}.' -> (regex matching 'res4.' at the start of a name, {'i': 2})."""
    parts, offsets, pos = [], {}, 0
    for field in _FIELD.finditer(template):
        parts += [re.escape(template[pos : field.start()]), rf"(?P<{field[1]}>\d+)"]
        offsets[field[1]] = int(field[2] or 0)
        pos = field.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts)), offsets


def _fill(template: str, indices: Mapping[str, int]) -> str:
    return _FIELD.sub(lambda f: str(indices[f[1]] + int(f[2] or 0)), template)


class NameTable:
    """Bidirectional prefix rewriting between our parameter names and the authors'.

    Each rule is ``(our prefix, authors' prefix)``; ``{i}`` stands for an integer index and
    ``{i+2}`` for that index plus 2 (our stage 0 is their ``res2``). A name is rewritten by the
    rule with the longest matching prefix, so ``…transformer.block.`` beats ``…transformer.``;
    the rest of the name is kept as it is.
    """

    def __init__(self, rules: Iterable[tuple[str, str]]) -> None:
        self.rules = tuple(rules)
        self._ours = [(*_compile(ours), theirs) for ours, theirs in self.rules]  # (regex, offsets, target)
        self._theirs = [(*_compile(theirs), ours) for ours, theirs in self.rules]

    @staticmethod
    def _rewrite(name: str, rules: list[tuple[re.Pattern[str], dict[str, int], str]]) -> str | None:
        best: tuple[int, str] | None = None  # (length of the matched prefix, rewritten name)
        for pattern, offsets, target in rules:
            match = pattern.match(name)
            if match is None or (best is not None and match.end() <= best[0]):
                continue
            indices = {key: int(value) - offsets[key] for key, value in match.groupdict().items()}
            if all(index >= 0 for index in indices.values()):
                best = (match.end(), _fill(target, indices) + name[match.end() :])
        return None if best is None else best[1]

    def to_official(self, name: str) -> str | None:
        """Our name -> the authors' name, or None when no rule applies (or it would not map back)."""
        result = self._rewrite(name, self._ours)
        return result if result is not None and self._rewrite(result, self._theirs) == name else None

    def from_official(self, name: str) -> str | None:
        """The authors' name -> ours, or None when no rule applies (or it would not map back)."""
        result = self._rewrite(name, self._theirs)
        return result if result is not None and self._rewrite(result, self._ours) == name else None


GENERATOR_NAMES = NameTable([
    # (ours, the authors')                                         spec section
    ("mask_embedder.linear.", "encs.encs.0."),  # mask embedder: shared Linear(S² -> L)
    ("generator.input_conv.conv.", "reshape_conv."),  # 1x1 conv of the tokens
    ("style_encoder.first_layer.", "style_encoder.Encoder.first_layer."),  # grouped style encoder
    ("style_encoder.down.{i}.", "style_encoder.Encoder.enc_layer_{i}."),
    ("style_encoder.up.{i}.", "style_encoder.Decoder.dec_layer_{i}."),
    ("style_encoder.to_style.{i}.", "style_encoder.out.out_{i}."),
    (MAPPING_PREFIX, "noise_encoder."),  # mapping network
    ("generator.stages.{i}.res.", "res{i+2}."),  # stage 1 = res2/cross2
    ("generator.stages.{i}.transformer.block.", "cross{i+2}.transformer_blocks.0."),
    ("generator.stages.{i}.transformer.", "cross{i+2}."),
    ("generator.out_conv.", "out_conv."),
])

DISCRIMINATOR_NAMES = NameTable([
    # spectral-norm convs sit one Sequential deeper: weight_orig, weight_u, weight_v
    ("scales.{s}.layers.{i}.conv.weight_", "discriminator_{s}.model{i}.0.0.weight_"),
    ("scales.{s}.layers.{i}.conv.", "discriminator_{s}.model{i}.0."),  # plain convs: weight, bias
])


# -- reading a checkpoint -------------------------------------------------------------------------

GENERATOR_WRAPPERS = ("netG", "generator", "G", "state_dict", "model", "net")
DISCRIMINATOR_WRAPPERS = ("netD", "discriminator", "D", "state_dict", "model", "net")


def _unwrap(obj: Any, wrapper_keys: tuple[str, ...]) -> dict[str, Tensor]:
    """Find the tensor dict inside what torch.load returned: a plain state dict, or one nested
    under a key such as ``"state_dict"`` or ``"netG"`` (training checkpoints)."""
    if isinstance(obj, Mapping):
        if obj and all(isinstance(key, str) and isinstance(value, Tensor) for key, value in obj.items()):
            return dict(obj)
        for key in wrapper_keys:
            if isinstance(obj.get(key), Mapping):
                return _unwrap(obj[key], wrapper_keys)
        keys = sorted(str(key) for key in obj)[:20]
        raise ValueError(
            f"no state dict found: expected a dict of tensors or one under a key in {list(wrapper_keys)}; "
            f"the top-level keys are {keys}"
        )
    raise ValueError(f"expected a state dict (a dict of tensors), got {type(obj).__name__}")


def _strip_module_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop the ``module.`` that torch.nn.DataParallel prepends to every name."""
    prefix = "module."
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return state


AUTHORS_WEIGHTS = ("the authors' weights are not shipped with ca2sis_lib: their CelebAMask-HQ generator "
                   "(latest_net_G.pth) is linked from the README of their repository, github.com/TFonta/CA2SIS, under "
                   "their licence (CC BY-NC-SA 4.0: non-commercial, share-alike). Download it yourself, accepting "
                   "those terms, then pass its path: load_official(\"path/to/latest_net_G.pth\") or "
                   "load_model(\"official:path/to/latest_net_G.pth\") (README.md, \"The authors' weights\")")


def read_state_dict(source: Source, map_location: Any = "cpu",
                    wrapper_keys: tuple[str, ...] = GENERATOR_WRAPPERS) -> dict[str, Tensor]:
    """A checkpoint file (or an in-memory dict) -> its plain state dict, names as saved.

    Files are read with ``torch.load(..., map_location=map_location, weights_only=True)``: tensors
    saved from a GPU land on ``map_location`` (the CPU by default), and no pickled code runs.
    A ``module.`` prefix (DataParallel) is removed. A missing file raises ``FileNotFoundError`` (a folder:
    ``IsADirectoryError``) saying where the authors' weights come from; a file torch cannot read as
    tensors raises ``ValueError``.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            where = f" (that is {os.path.abspath(path)})" if os.path.abspath(path) != path else ""
            error_type = IsADirectoryError if os.path.isdir(path) else FileNotFoundError
            kind = "is a folder, not a file" if os.path.isdir(path) else "does not exist"
            raise error_type(f"{path!r}{where} {kind}; {AUTHORS_WEIGHTS}")
        try:
            obj = torch.load(path, map_location=map_location, weights_only=True)
        except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
            reason = unreadable_checkpoint_reason(error)
            if reason is None:
                raise
            pickled_objects = isinstance(error, pickle.UnpicklingError) and "Unsupported global" in str(error)
            fix = ("load it in the code that wrote it and save model.state_dict() (weights_only=True reads "
                   "tensors only)" if pickled_objects else
                   "pass the authors' file itself (latest_net_G.pth, linked from github.com/TFonta/CA2SIS; "
                   "README.md, \"The authors' weights\")")
            raise ValueError(f"{path!r} is not a PyTorch state dict: {reason}; {fix}") from error
    else:
        obj = source
    return _strip_module_prefix(_unwrap(obj, wrapper_keys))


# -- checking against the manifest ---------------------------------------------------------------

def _listing(title: str, items: list[str], limit: int = 20) -> str:
    shown = items[:limit] + ([f"... and {len(items) - limit} more"] if len(items) > limit else [])
    return f"  {title} ({len(items)}): " + ", ".join(shown)


def check_against_manifest(state: Mapping[str, Tensor], expected: Mapping[str, list[int]], what: str) -> None:
    """Raise ``ValueError`` listing missing, unexpected and mis-shaped keys (names as the authors')."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshaped = [
        f"{key} {tuple(state[key].shape)} != expected {tuple(shape)}"
        for key, shape in expected.items()
        if key in state and tuple(state[key].shape) != tuple(shape)
    ]
    if missing or unexpected or misshaped:
        lines = [f"state dict does not match the authors' {what} ({MANIFEST_FILE}):"]
        lines += [_listing(title, items) for title, items in
                  (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)) if items]
        raise ValueError("\n".join(lines))


def _convert(state: Mapping[str, Tensor], table: NameTable, what: str) -> StateDict:
    check_against_manifest(state, official_manifest()[what], what)
    converted: StateDict = {}
    for key, value in state.items():
        ours = table.from_official(key)
        if ours is None or ours in converted:  # cannot happen for a table tested against the manifest
            raise RuntimeError(f"name table bug: {key!r} maps to {ours!r}")
        converted[ours] = value
    return converted


def _load_exactly(model: nn.Module, state: StateDict, source: str = "the authors' weights") -> None:
    """load_state_dict, after checking that names and shapes agree one to one, that no weight was
    turned into integers, and warning about NaN or inf weights."""
    own = model.state_dict()
    bad = sorted(set(own) ^ set(state)) + [k for k in own if k in state and own[k].shape != state[k].shape]
    if bad:
        raise ValueError(f"converted state dict does not fit {type(model).__name__}: {bad[:20]}")
    check_weights(model, state, source)
    model.load_state_dict(state, strict=True)


def _source_name(source: Source) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the given state dict"


def _export(model: nn.Module, table: NameTable, what: str) -> StateDict:
    expected = official_manifest()[what]
    state = {}
    for name, value in model.state_dict().items():
        official = table.to_official(name)
        state[official if official is not None else f"<no rule for {name}>"] = value
    check_against_manifest(state, expected, what)
    return {key: state[key] for key in expected}  # the authors' order


# -- generator ----------------------------------------------------------------------------------

EXECUTION_FIELDS = ("attention_backend", "gradient_checkpointing", "ignore_index")  # weights-neutral


def paper_config(config: CA2SISConfig | None = None) -> CA2SISConfig:
    """Check that ``config`` computes the authors' function (the paper preset, up to execution
    options such as the attention backend); default: ``CA2SISConfig.paper()``."""
    if config is None:
        return CA2SISConfig.paper()
    reference = dataclasses.replace(CA2SISConfig.paper(), **{f: getattr(config, f) for f in EXECUTION_FIELDS})
    if config != reference:
        diff = {k: v for k, v in config.to_dict().items() if reference.to_dict()[k] != v}
        raise ValueError(
            "the authors' weights fit only the paper preset (CA2SISConfig.paper(), execution options aside); "
            f"this config differs in {diff}"
        )
    return config


def convert_official(state_dict: Mapping[str, Tensor]) -> StateDict:
    """The authors' generator state dict -> ours (checked against the manifest; tensors shared)."""
    return _convert(_strip_module_prefix(dict(state_dict)), GENERATOR_NAMES, "generator")


def load_official(path_or_state_dict: Source, map_location: Any = "cpu",
                  config: CA2SISConfig | None = None) -> CA2SIS:
    """A paper-preset ``CA2SIS`` carrying the authors' generator weights, in eval mode.

    ``path_or_state_dict``: the file as the authors save it (``torch.save(netG.state_dict())``,
    possibly ``module.``-prefixed or nested under ``"netG"``/``"state_dict"``), or that dict.
    ``config`` may change execution options only (e.g. ``CA2SISConfig.paper(attention_backend=
    "reference")``). Raises ``ValueError`` listing every missing, unexpected or mis-shaped key.
    """
    state = convert_official(read_state_dict(path_or_state_dict, map_location, GENERATOR_WRAPPERS))
    model = CA2SIS(paper_config(config))
    _load_exactly(model, state, _source_name(path_or_state_dict))
    return model.eval()


def export_official(model: CA2SIS) -> StateDict:
    """Our paper-preset model -> a state dict with the authors' names, shapes and order.

    Like ``state_dict()`` the tensors share memory with the model; ``export_official(load_official
    (sd))`` equals ``sd`` exactly.
    """
    paper_config(model.config)
    return _export(model, GENERATOR_NAMES, "generator")


# -- discriminator -------------------------------------------------------------------------------

def convert_official_discriminator(state_dict: Mapping[str, Tensor]) -> StateDict:
    """The authors' discriminator state dict -> ours (checked against the manifest)."""
    return _convert(_strip_module_prefix(dict(state_dict)), DISCRIMINATOR_NAMES, "discriminator")


def load_official_discriminator(path_or_state_dict: Source, map_location: Any = "cpu") -> MultiscaleDiscriminator:
    """``MultiscaleDiscriminator(19)`` (docs/architecture.md#discriminator-and-training-losses) with the authors'
    weights, spectral-norm vectors
    included, in eval mode (call ``.train()`` to fine-tune: power iteration then resumes)."""
    state = convert_official_discriminator(read_state_dict(path_or_state_dict, map_location, DISCRIMINATOR_WRAPPERS))
    model = MultiscaleDiscriminator(num_classes=CA2SISConfig.paper().num_classes)  # K = 19, 2 scales
    _load_exactly(model, state, _source_name(path_or_state_dict))
    return model.eval()


def export_official_discriminator(model: MultiscaleDiscriminator) -> StateDict:
    """Our paper-preset discriminator -> the authors' names (weight_orig, weight_u, weight_v)."""
    return _export(model, DISCRIMINATOR_NAMES, "discriminator")
