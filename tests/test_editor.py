"""The style and shape editor: its logic runs headless, each operation is the editing function,
only a change that can alter the result runs the model, bad choices are refused with a reason."""

from __future__ import annotations

import pytest
import torch
from conftest import perturbed_tiny_ca2sis

from ca2sis_lib import editing
from ca2sis_lib.data.toy import TOY_CLASSES, TOY_PALETTE, ToyFaces
from ca2sis_lib.data.toy_scene import CLASS_ID
from ca2sis_lib.models import CA2SIS
from ca2sis_lib.models.sean import SEANConfig, SEANGenerator
from ca2sis_lib.viz.editor import OPERATIONS, EditorApp, StyleShapeEditor, build_editor

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HAIR, NOSE = CLASS_ID["hair"], CLASS_ID["nose"]


@pytest.fixture(scope="module")
def model() -> CA2SIS:
    return perturbed_tiny_ca2sis()


@pytest.fixture(scope="module")
def samples():
    data = ToyFaces(num_samples=4, split="test")
    return [data[i] for i in range(4)]


def _batch(samples, i):
    return samples[i]["image"][None], samples[i]["label"][None]


def test_every_operation_is_the_editing_function(model, samples):
    editor = StyleShapeEditor(model, samples, TOY_CLASSES, TOY_PALETTE, dpi=30)
    (a, la), (b, lb) = _batch(samples, 0), _batch(samples, 1)
    expected = {
        "reconstruct": editing.reconstruct(model, a, la),
        "style: global": editing.transfer_style(model, a, la, b, lb),
        "style: classes": editing.transfer_style(model, a, la, b, lb, [HAIR]),
        "style: interpolate": editing.interpolate_style(model, a, la, b, lb, [0.75], [HAIR])[0],
        "shape: mask": editing.transfer_shape_with_mask(model, a, la, lb, [HAIR]),
        "shape: tokens": editing.transfer_shape_without_mask(model, a, la, b, lb, [HAIR], with_style=False),
        "shape: interpolate": editing.interpolate_shape(model, a, la, lb, [HAIR], [0.75])[0],
        "noise: sample": editing.generate_from_noise(model, la, 1, seed=3)[0],
    }
    assert set(expected) == set(OPERATIONS)
    for op, image in expected.items():
        result = editor.set(operation=op, classes=(HAIR,), t=0.25, seed=3)
        assert torch.allclose(result, image[0], atol=1e-6), op
        assert editor.png.startswith(PNG_SIGNATURE)


def test_only_changes_that_matter_run_the_model(model, samples):
    editor = StyleShapeEditor(model, samples, TOY_CLASSES, dpi=30)
    editor.set(operation="style: classes", classes=(HAIR,))
    runs = editor.state.forwards
    editor.set(t=0.3, seed=5)  # irrelevant for a plain class transfer
    assert editor.state.forwards == runs
    editor.set(b=2)
    assert editor.state.forwards == runs + 1
    editor.set(operation="style: interpolate", t=0.0)
    assert torch.allclose(editor.result, editing.reconstruct(model, *_batch(samples, 0))[0], atol=1e-5)  # t = 0 is A


def test_bad_choices_are_refused_and_leave_the_state(model, samples):
    editor = StyleShapeEditor(model, samples, TOY_CLASSES, dpi=30)
    before = (editor.state.a, editor.state.operation, editor.state.classes)
    with pytest.raises(ValueError, match="outside"):
        editor.set(a=9)
    with pytest.raises(ValueError, match="at least one class"):
        editor.set(operation="style: classes", classes=())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        editor.set(t=1.5)
    with pytest.raises(ValueError, match="unknown operation"):
        editor.set(operation="paint")
    ears = CLASS_ID["ears"]
    no_ears = dict(samples[1], label=samples[1]["label"].masked_fill(samples[1]["label"] == ears, 1), name="no ears")
    editor.samples = [*samples, no_ears]
    with pytest.raises(ValueError, match="B has no ears"):
        editor.set(b=len(samples), classes=(ears,), operation="style: classes")
    assert (editor.state.a, editor.state.operation, editor.state.classes) == before
    with pytest.raises(ValueError, match="two samples"):
        StyleShapeEditor(model, samples[:1])


def test_spade_family_offers_only_what_it_can_do(samples):
    torch.manual_seed(0)
    sean = SEANGenerator(SEANConfig.tiny()).eval()
    editor = StyleShapeEditor(sean, samples, TOY_CLASSES, dpi=30)
    assert "shape: tokens" not in editor.operations() and "shape: mask" in editor.operations()
    editor.set(operation="shape: mask", classes=(NOSE,))  # a composed mask
    with pytest.raises(ValueError, match="needs CA²-SIS"):
        editor.set(operation="shape: tokens")


def test_widgets_drive_the_editor_and_export(model, samples, tmp_path):
    app = build_editor(model, samples, TOY_CLASSES, TOY_PALETTE, export_path=tmp_path / "edit.png", dpi=30)
    assert isinstance(app, EditorApp)
    first = bytes(app.image.value)
    assert first.startswith(PNG_SIGNATURE)
    app.controls["operation"].value = "style: global"
    assert app.editor.state.operation == "style: global" and bytes(app.image.value) != first
    app.controls["b"].value = 2
    app.controls["operation"].value = "style: interpolate"
    app.controls["classes"].value = (HAIR,)
    app.controls["t"].value = 0.5
    assert app.editor.state.classes == (HAIR,) and app.editor.state.t == 0.5
    app.controls["classes"].value = ()  # refused: the status says why, the state stays
    assert "at least one class" in app.status.value and app.editor.state.classes == (HAIR,)
    app.export_button.click()
    assert (tmp_path / "edit.png").read_bytes().startswith(PNG_SIGNATURE) and "saved" in app.status.value
