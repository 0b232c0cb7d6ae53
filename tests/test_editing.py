"""Editing operations of docs/architecture.md#editing-operations on a tiny CA²-SIS with perturbed weights."""

import re

import pytest
import torch

from ca2sis_lib import editing
from ca2sis_lib.contract import InputError
from ca2sis_lib.data.toy import TOY_CLASSES
from ca2sis_lib.models import CA2SIS, CA2SISConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = CA2SIS(CA2SISConfig.tiny()).eval()
    for p in m.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    return m


def _pair(k=12, size=64):
    labels = torch.zeros(2, size, size, dtype=torch.long)
    for c in range(1, k):
        lo = c * 2
        labels[0, lo : size - lo, lo : size - lo] = c
        labels[1, lo + 1 : size - lo + 1, lo : size - lo - 2] = c
    image = torch.rand(2, 3, size, size) * 2 - 1
    return image[:1], labels[:1], image[1:], labels[1:]


def test_reconstruction_equals_the_forward(model):
    ia, la, _, _ = _pair()
    with torch.no_grad():
        assert torch.equal(editing.reconstruct(model, ia, la), model(ia, la).image)


def test_style_transfer_of_all_classes_is_global_transfer(model):
    ia, la, ib, lb = _pair()
    every = list(range(12))
    assert torch.allclose(editing.transfer_style(model, ia, la, ib, lb, every),
                          editing.transfer_style(model, ia, la, ib, lb), atol=1e-6)
    local = editing.transfer_style(model, ia, la, ib, lb, [8])
    assert not torch.allclose(local, editing.reconstruct(model, ia, la))


def test_interpolation_end_points(model):
    ia, la, ib, lb = _pair()
    frames = editing.interpolate_style(model, ia, la, ib, lb, alphas=[1.0, 0.0])
    assert torch.allclose(frames[0], editing.reconstruct(model, ia, la), atol=1e-6)
    assert torch.allclose(frames[1], editing.transfer_style(model, ia, la, ib, lb), atol=1e-6)
    shape = editing.interpolate_shape(model, ia, la, lb, [3, 4], alphas=[1.0, 0.5])
    assert torch.allclose(shape[0], editing.reconstruct(model, ia, la), atol=1e-6)


def test_shape_edit_without_mask_uses_b_tokens(model):
    ia, la, ib, lb = _pair()
    edited = editing.transfer_shape_without_mask(model, ia, la, ib, lb, [3], with_style=False)
    with torch.no_grad():
        a = model.prepare_mask(la)
        b = model.prepare_mask(lb)
        swapped = editing.swap_mask_channels(a, b, [3])
        expected = model.decode(model.embed_mask(swapped), model.encode_style(ia, a)).image
    # the Linear embedder is per-class, so swapping a token equals embedding the swapped channel
    assert torch.allclose(edited, expected, atol=1e-5)


def test_compose_masks_overlap_rule():
    a = torch.zeros(1, 8, 8, dtype=torch.long)
    a[0, 2:4, 2:4] = 3  # A's part at the top left
    a[0, :, 5:] = 1
    b = torch.zeros(1, 8, 8, dtype=torch.long)
    b[0, 5:7, 1:3] = 3  # B's part lower down
    out = editing.compose_masks(a, b, [3])
    assert (out[0, 5:7, 1:3] == 3).all() and (out == 3).sum() == 4  # painted from B
    assert (out[0, 2:4, 2:4] == 0).all()  # A's old part filled by its nearest class (background)
    assert (out[0, :, 5:] == 1).all()


def test_errors_name_the_problem(model):
    ia, la, ib, lb = _pair()
    with pytest.raises(ValueError, match="out of range"):
        editing.transfer_style(model, ia, la, ib, lb, [12])
    lb_missing = lb.clone()
    lb_missing[lb_missing == 5] = 1
    with pytest.raises(ValueError, match="class 5 is absent from the reference"):
        editing.transfer_style(model, ia, la, ib, lb_missing, [5])
    with pytest.raises(ValueError, match="no mask token"):
        editing.transfer_shape_without_mask(model, ia, la, ib, lb, [0])


def test_noise_generation_is_seeded_and_zeroes_absent_classes(model):
    _, la, _, _ = _pair()
    first = editing.generate_from_noise(model, la, num_samples=2, seed=3)
    again = editing.generate_from_noise(model, la, num_samples=2, seed=3)
    assert first.shape == (2, 1, 3, 64, 64) and torch.equal(first, again)
    assert not torch.allclose(first[0], first[1])


def test_token_swap_is_the_channel_swap_for_ca2sis(model):
    """The mask embedder embeds each class channel alone with one shared Linear, so replacing a
    token equals replacing the channel and re-embedding (with A's styles in both)."""
    image_a, labels_a, image_b, labels_b = _pair()
    via_mask = editing.transfer_shape_with_mask(model, image_a, labels_a, labels_b, [5, 8])
    via_tokens = editing.transfer_shape_without_mask(model, image_a, labels_a, image_b, labels_b, [5, 8],
                                                     with_style=False)
    assert torch.allclose(via_mask, via_tokens, atol=1e-6)


@pytest.mark.parametrize("classes", [["hair"], "hair", ("skin", 8)])
def test_class_names_are_refused_with_the_way_to_get_an_id(model, classes):
    ia, la, ib, lb = _pair()
    with pytest.raises(InputError) as info:
        editing.transfer_style(model, ia, la, ib, lb, classes)
    message = str(info.value)
    name = next(c for c in ([classes] if isinstance(classes, str) else classes) if isinstance(c, str))
    assert f"classes are given as class ids (integers), not names: got {name!r}" in message  # the problem
    assert f"[dataset.class_names.index({name!r})]" in message  # the fix, with the real lookup
    assert f"[CLASS_NAMES.index({name!r})] in notebooks 04 and 05" in message
    assert f"in the toy faces (TOY_CLASSES) {name!r} is class {TOY_CLASSES.index(name)}" in message  # a 12-class model
    assert "CELEBAMASK_CLASSES" not in message  # 19 classes: not this model's list


def test_every_editing_function_validates_classes_in_one_place(model):
    ia, la, ib, lb = _pair()
    a, b = model.prepare_mask(la), model.prepare_mask(lb)
    calls = {
        "transfer_style": lambda c: editing.transfer_style(model, ia, la, ib, lb, c),
        "interpolate_style": lambda c: editing.interpolate_style(model, ia, la, ib, lb, [0.5], c),
        "transfer_shape_with_mask": lambda c: editing.transfer_shape_with_mask(model, ia, la, lb, c),
        "transfer_shape_without_mask": lambda c: editing.transfer_shape_without_mask(model, ia, la, ib, lb, c),
        "interpolate_shape": lambda c: editing.interpolate_shape(model, ia, la, lb, c, [0.5]),
        "swap_mask_channels": lambda c: editing.swap_mask_channels(a, b, c),
        "compose_masks": lambda c: editing.compose_masks(la, lb, c),
    }
    for call in calls.values():
        with pytest.raises(InputError, match=re.escape("not names: got 'hair'")):
            call(["hair"])
        with pytest.raises(InputError, match=re.escape("got 8.5 (float)")) as info:
            call([8.5])
        assert "classes must be class ids (integers)" in str(info.value) and ".index('hair')" in str(info.value)
        with pytest.raises(InputError, match="no classes given to edit: pass at least one class id"):
            call([])
        with pytest.raises(InputError, match=re.escape("class ids [-1] are out of range")):
            call([-1])
    for name in ("transfer_style", "swap_mask_channels", "compose_masks"):
        assert torch.equal(calls[name](9), calls[name]([9])), name  # one int is a one-class list


def test_out_of_range_class_ids_name_the_valid_range(model):
    ia, la, ib, lb = _pair()
    with pytest.raises(InputError, match=re.escape("class ids [12] are out of range: this model has 12 classes, "
                                                   "so valid ids are 0 to 11")):
        editing.transfer_style(model, ia, la, ib, lb, [12])
    a = model.prepare_mask(la)
    with pytest.raises(InputError, match=re.escape("class ids [12] are out of range: the masks have 12 classes, "
                                                   "so valid ids are 0 to 11")):
        editing.swap_mask_channels(a, a, 12)
    with pytest.raises(InputError, match=re.escape("class ids [-1] are out of range: class ids are 0 or more")):
        editing.compose_masks(la, la, -1)


EDITS = {  # public call -> (masks, images) it is given
    "reconstruct": (lambda m, ia, la, ib, lb: editing.reconstruct(m, ia, la), 1, 1),
    "transfer_style": (lambda m, ia, la, ib, lb: editing.transfer_style(m, ia, la, ib, lb, [8]), 2, 2),
    "interpolate_style": (
        lambda m, ia, la, ib, lb: editing.interpolate_style(m, ia, la, ib, lb, [0.0, 1.0], [3]), 2, 2),
    "transfer_shape_with_mask": (lambda m, ia, la, ib, lb: editing.transfer_shape_with_mask(m, ia, la, lb, [3]), 2, 1),
    "transfer_shape_without_mask": (
        lambda m, ia, la, ib, lb: editing.transfer_shape_without_mask(m, ia, la, ib, lb, [3]), 2, 2),
    "interpolate_shape": (lambda m, ia, la, ib, lb: editing.interpolate_shape(m, ia, la, lb, [3], [0.0, 1.0]), 2, 1),
    "generate_from_noise": (lambda m, ia, la, ib, lb: editing.generate_from_noise(m, la, 2), 1, 0),
}
CROSS_ATTENTION_ONLY = ("transfer_shape_without_mask", "interpolate_shape", "generate_from_noise")


@pytest.mark.parametrize("family", ["ca2sis", "sean"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_each_input_is_validated_once_per_edit(model, family, edit, monkeypatch):
    """Check at the public boundary, unchecked internals inside: every mask and image is validated once."""
    import warnings

    import ca2sis_lib.masks as masks_module
    import ca2sis_lib.models.generator_base as base_module
    from ca2sis_lib.models import SEANConfig, SEANGenerator

    if family == "sean" and edit in CROSS_ATTENTION_ONLY:
        pytest.skip("CA²-SIS only")
    generator = model if family == "ca2sis" else SEANGenerator(SEANConfig.tiny()).eval()
    counts = {"mask": 0, "image": 0}
    def counter(original, kind):
        def counted(*args, **kwargs):
            counts[kind] += 1
            return original(*args, **kwargs)
        return counted

    for module, name, kind in ((masks_module, "check_labels", "mask"), (masks_module, "check_one_hot", "mask"),
                               (base_module, "prepare_image", "image")):
        monkeypatch.setattr(module, name, counter(getattr(module, name), kind))
    call, masks, images = EDITS[edit]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # generate_from_noise: the tiny model's mapping network is untrained
        call(generator, *_pair())
    assert counts == {"mask": masks, "image": images}, f"{edit} validated {counts}: {masks} mask(s), {images} image(s)"
