"""One rule per fact: the image-size rule and the label rule each live once, and every family agrees.

Each family (CA²-SIS, SEAN-style, SPADE, their configs through the training settings, the masks
module and the dataset checker) must accept exactly the same inputs and refuse the others with the
same words: a size hint that suggests a size one family refuses, or a label map the data checker
passes and the model refuses mid-training, is the drift these tests catch.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from ca2sis_lib.contract import supported_sizes_hint
from ca2sis_lib.data.preflight import DataError, validate_label
from ca2sis_lib.masks import labels_to_one_hot
from ca2sis_lib.models import CA2SIS, CA2SISConfig, SEANConfig, SEANGenerator, SPADEConfig, SPADEGenerator
from ca2sis_lib.training.config import TrainConfig

SIZES = (32, 64, 96, 128, 192, 256, 320, 512, 576, 640, 1024)
ALLOWED = {64, 128, 192, 256, 320, 512}
SIZE_FAMILIES = {
    "CA2SISConfig.tiny": lambda size: CA2SISConfig.tiny(image_size=size),
    "CA2SISConfig.paper": lambda size: CA2SISConfig.paper(image_size=size),
    "SEANConfig.tiny": lambda size: SEANConfig.tiny(image_size=size),
    "SEANConfig.paper": lambda size: SEANConfig.paper(image_size=size),
    "SPADEConfig.tiny": lambda size: SPADEConfig.tiny(image_size=size),
    "SPADEConfig.paper": lambda size: SPADEConfig.paper(image_size=size),
    "TrainConfig ca2sis": lambda size: TrainConfig(family="ca2sis", model_overrides={"image_size": size}),
    "TrainConfig sean": lambda size: TrainConfig(family="sean", model_overrides={"image_size": size}),
}


def _verdict(make, *args) -> str | None:
    """None when accepted, else the refusal's text."""
    try:
        make(*args)
    except ValueError as error:
        return str(error)
    return None


@pytest.mark.parametrize("size", SIZES)
def test_every_family_accepts_the_same_image_sizes_with_one_message(size):
    verdicts = {name: _verdict(make, size) for name, make in SIZE_FAMILIES.items()}
    accepted = sorted(name for name, verdict in verdicts.items() if verdict is None)
    if size in ALLOWED:
        assert accepted == sorted(SIZE_FAMILIES), verdicts
        return
    assert not accepted, f"{size} accepted by {accepted} but refused by the others: {verdicts}"
    rule = verdicts["CA2SISConfig.tiny"]
    assert rule.endswith(f", got {size}") and "image_size" in rule
    for name, verdict in verdicts.items():
        assert rule in verdict, f"{name} names another rule: {verdict!r} (CA²-SIS: {rule!r})"


@pytest.mark.parametrize("side", [30, 100, 200, 700])
def test_the_size_hint_names_the_rule_and_only_sizes_every_family_accepts(side):
    hint = supported_sizes_hint(side, side)
    rule = _verdict(SIZE_FAMILIES["CA2SISConfig.tiny"], 96).removesuffix(", got 96")
    assert rule in hint
    for size in (int(s) for s in re.findall(r"(\d+)²", hint)):
        assert all(_verdict(make, size) is None for make in SIZE_FAMILIES.values()), (hint, size)


# -- labels -------------------------------------------------------------------------------------------
K, S = 12, 64


def _label_maps() -> dict[str, tuple[np.ndarray, int | None]]:
    """Label maps (S, S) and the ignore label they are checked with."""
    base = np.zeros((S, S), dtype=np.int64)
    base[:, S // 2:] = 3
    top, beyond, negative, ignored = base.copy(), base.copy(), base.copy(), base.copy()
    top[0, 0] = K - 1
    beyond[0, :4] = K
    negative[1, 1] = -1
    ignored[2, 2] = 255
    return {
        "in range": (base, None), "max id K-1": (top, None), "id K": (beyond, None), "negative": (negative, None),
        "255 without ignore_index": (ignored, None), "255 with ignore_index=255": (ignored, 255),
        "float whole": (base.astype(np.float32), None), "float fractions": (base + np.float32(0.5), None),
        "boolean": (base > 0, None),
    }


def _label_families(ignore_index: int | None):
    ca2sis = CA2SIS(CA2SISConfig.tiny(ignore_index=ignore_index)).eval()
    sean = SEANGenerator(SEANConfig.tiny(ignore_index=ignore_index)).eval()
    spade = SPADEGenerator(SPADEConfig.tiny(ignore_index=ignore_index)).eval()
    return {
        "CA2SIS.prepare_mask": lambda labels: ca2sis.prepare_mask(torch.from_numpy(labels)[None]),
        "SEANGenerator.prepare_mask": lambda labels: sean.prepare_mask(torch.from_numpy(labels)[None]),
        "SPADEGenerator.decode": lambda labels: spade.decode(torch.from_numpy(labels)[None]),
        "masks.labels_to_one_hot": lambda labels: labels_to_one_hot(torch.from_numpy(labels)[None], K, ignore_index),
        "data checker": lambda labels: validate_label(labels, K, ignore_index, "labels/a.png"),
    }


@pytest.fixture(scope="module")
def label_families():
    return {ignore: _label_families(ignore) for ignore in (None, 255)}


@pytest.mark.parametrize("case", list(_label_maps()))
def test_every_family_accepts_the_same_label_maps_with_one_message(case, label_families):
    labels, ignore_index = _label_maps()[case]
    verdicts = {}
    for name, check in label_families[ignore_index].items():
        with torch.no_grad():
            verdicts[name] = _verdict(check, labels)
    expected_ok = case in ("in range", "max id K-1", "255 with ignore_index=255", "float whole")
    accepted = sorted(name for name, verdict in verdicts.items() if verdict is None)
    if expected_ok:
        assert not [v for v in verdicts.values() if v is not None], verdicts
        return
    assert not accepted, f"{case!r} accepted by {accepted} but refused by the others: {verdicts}"
    rule = verdicts["masks.labels_to_one_hot"]
    for name, verdict in verdicts.items():
        assert rule in verdict, f"{name} says {verdict!r}, the models say {rule!r}"
    with pytest.raises(DataError, match=re.escape(f"labels/a.png: {rule}")):
        validate_label(labels, K, ignore_index, "labels/a.png")
    if case in ("id K", "negative", "255 without ignore_index"):
        assert f"outside [0, {K})" in rule and "ignore_index" in rule and "never clipped" in rule


# -- training settings: one schema ----------------------------------------------------------------------
def test_every_numeric_training_setting_has_one_rule_and_its_message_comes_from_it():
    import dataclasses
    import typing

    from ca2sis_lib.training import settings

    hints = typing.get_type_hints(TrainConfig)
    numeric = {f.name for f in dataclasses.fields(TrainConfig)
               if {int, float} & set(typing.get_args(hints[f.name]) or (hints[f.name],))}
    assert numeric <= set(settings.SCHEMA), f"settings without a range: {sorted(numeric - set(settings.SCHEMA))}"
    for name, rule in settings.SCHEMA.items():
        bad = "" if isinstance(rule, settings.Text) else -7
        with pytest.raises(ValueError, match="invalid training settings") as info:
            TrainConfig(**{name: bad})
        assert rule.problem(name, bad, TrainConfig()) in str(info.value)
