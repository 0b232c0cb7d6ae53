"""The input contract (ca2sis_lib/contract.py): one test per case of the issue that found the gaps.

Every bad input must stop with ``InputError`` (or, for configs and loading, a ``ValueError``)
whose message names the problem and the fix; every good input in another dtype must work.
"""

import json
import re
import shutil
import threading
import warnings

import pytest
import torch

from ca2sis_lib import editing
from ca2sis_lib.contract import InputError, InputWarning, checks_disabled, supported_sizes_hint
from ca2sis_lib.data.toy import toy_batch
from ca2sis_lib.models import CA2SIS, CA2SISConfig
from ca2sis_lib.models.discriminator import MultiscaleDiscriminator
from ca2sis_lib.models.sean import SEANConfig, SEANGenerator
from ca2sis_lib.models.spade import SPADEConfig, SPADEGenerator
from ca2sis_lib.notebook import check_path, choose, smoke_overrides


@pytest.fixture(scope="module")
def ca2sis():
    torch.manual_seed(0)
    return CA2SIS(CA2SISConfig.tiny()).eval()


@pytest.fixture(scope="module")
def sean():
    torch.manual_seed(0)
    return SEANGenerator(SEANConfig.tiny()).eval()


@pytest.fixture(scope="module")
def batch():
    image, labels = toy_batch(2, "test", 64, 0, 0)  # (2, 3, 64, 64) in [-1, 1], (2, 64, 64)
    return image, labels


def families(ca2sis, sean):
    return {"ca2sis": ca2sis, "sean": sean}


# -- Images ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["ca2sis", "sean"])
@pytest.mark.parametrize("convert, message", [
    (lambda x: (x + 1) * 127.5, "looks like [0, 255]; the models take [-1, 1]: convert with image.float() / 127.5 - 1"),
    (lambda x: x * 2.5, "beyond what resizing a [-1, 1] image gives (±2)"),
    (lambda x: ((x + 1) * 127.5).round().to(torch.uint8), "integer dtype torch.uint8"),
])
def test_images_in_other_ranges_are_refused_naming_the_conversion(ca2sis, sean, batch, family, convert, message):
    model = families(ca2sis, sean)[family]
    image, labels = batch
    with pytest.raises(InputError, match=re.escape(message)):
        model(convert(image), labels)
    with pytest.raises(InputError, match=re.escape(message)):
        editing.reconstruct(model, convert(image), labels)
    with pytest.raises(InputError, match=re.escape(message)):
        model.encode_style(convert(image), labels)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_one_non_finite_pixel_is_refused(ca2sis, sean, batch, bad):
    image, labels = batch
    image = image.clone()
    image[1, 2, 10, 20] = bad
    for model in (ca2sis, sean):
        with pytest.raises(InputError, match="non-finite"):
            model(image, labels)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_images_of_other_float_dtypes_follow_the_model(ca2sis, sean, batch, dtype):
    image, labels = batch
    for model in (ca2sis, sean):
        with torch.no_grad():
            expected = model(image, labels).image
            got = model(image.to(dtype), labels).image
        assert got.dtype == torch.float32 and got.shape == expected.shape
        tolerance = 0.05 if dtype in (torch.float16, torch.bfloat16) else 1e-5
        assert (got - expected).abs().max() < tolerance


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_half_or_bf16_model_runs_on_the_cpu_as_the_dtype_policy_says(batch, dtype):
    """contract.py: inputs follow the model, an fp32 image works with a half model. On the CPU such a
    model crashed in its float32 GroupNorm ("mixed dtype (CPU)"), for every CA²-SIS call."""
    import copy

    from conftest import perturbed_tiny_ca2sis

    image, labels = batch
    torch.manual_seed(0)
    for full in (perturbed_tiny_ca2sis(), SEANGenerator(SEANConfig.tiny()).eval()):
        low = copy.deepcopy(full).to(dtype)
        with torch.no_grad():
            expected, got = full(image, labels).image, low(image, labels).image
            assert got.dtype == dtype and (got.float() - expected).abs().max() < 0.05
            edited = editing.transfer_style(low, image, labels, image.flip(0), labels.flip(0), classes=[1])
            assert torch.isfinite(edited).all() and torch.isfinite(editing.reconstruct(low, image, labels)).all()
            if hasattr(low, "styles_from_noise"):
                assert torch.isfinite(editing.generate_from_noise(low, labels[:1], num_samples=2)).all()


def test_spade_checks_the_image_it_is_given(batch):
    model = SPADEGenerator(SPADEConfig.tiny()).eval()
    image, labels = batch
    with pytest.raises(InputError, match="looks like"):
        model((image + 1) * 127.5, labels)
    assert model(None, labels).image.shape == (2, 3, 64, 64)


@pytest.mark.parametrize("family", ["ca2sis", "sean"])
def test_valid_images_that_look_doubtful_are_never_refused(ca2sis, sean, batch, family, monkeypatch):
    """A bright [-1, 1] image (every value >= 0) may be [0, 1] data: one warning per calling line,
    never a refusal; a bicubic enlargement overshoots [-1, 1] and passes without a word."""
    from ca2sis_lib import contract

    monkeypatch.setattr(contract, "_WARNED_AT", set())  # these lines warned already for the other family
    model = families(ca2sis, sean)[family]
    image, labels = batch
    bright = (image + 1) / 2  # a [-1, 1] image of a white wall, or [0, 1] data: undecidable
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        for _ in range(3):
            assert model(bright, labels).image.shape == (2, 3, 64, 64)  # one line, called three times
        editing.reconstruct(model, bright, labels)  # another line: its own warning
    doubts = [w for w in caught if issubclass(w.category, InputWarning)]
    assert len(doubts) == 2 and all(w.filename == __file__ for w in doubts), [str(w.message) for w in doubts]
    assert "if this is [0, 1] data, convert it with image * 2 - 1" in str(doubts[0].message)
    checker = ((torch.arange(16)[:, None] + torch.arange(16)) % 2).float() * 2 - 1  # the worst case for overshoot
    sharp = torch.nn.functional.interpolate(checker.expand(2, 3, 16, 16).contiguous(), size=64, mode="bicubic")
    assert sharp.abs().max() > 1.4  # well beyond [-1, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        with torch.no_grad():
            assert torch.isfinite(model(sharp, labels).image).all()


def test_checks_disabled_is_a_switch_of_its_own_thread_only(ca2sis, batch):
    """checks_disabled() skips the value checks inside its block; another thread at the same moment
    keeps them (the switch was a module global: one block turned every check off everywhere)."""
    image, labels = batch
    wrong = image * 127.5 + 127.5  # [0, 255]: certainly wrong
    inside, other_thread_done = threading.Event(), threading.Event()
    seen = {}

    def other_thread():
        inside.wait(10)
        try:
            ca2sis.encode_style(wrong, labels)
            seen["other"] = "accepted"
        except InputError:
            seen["other"] = "refused"
        other_thread_done.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    with checks_disabled(), torch.no_grad():
        inside.set()
        other_thread_done.wait(60)
        assert ca2sis.encode_style(wrong, labels).shape[0] == 2  # here: skipped, as asked
    worker.join()
    assert seen == {"other": "refused"}
    with pytest.raises(InputError, match="looks like \\[0, 255\\]"):  # and back on after the block
        ca2sis.encode_style(wrong, labels)


# -- Parts of the model and the editing operations ----------------------------------------------------
@pytest.mark.parametrize("family", ["ca2sis", "sean"])
def test_reconstruct_refuses_sizes_and_batches_that_do_not_match(ca2sis, sean, batch, family):
    model = families(ca2sis, sean)[family]
    image, labels = batch
    with pytest.raises(InputError, match=re.escape("image size (32, 32) does not fit this model")):
        editing.reconstruct(model, image[:, :, :32, :32], labels)
    big_image = torch.nn.functional.interpolate(image, size=128)
    big_labels = labels.repeat_interleave(2, 1).repeat_interleave(2, 2)
    with pytest.raises(InputError, match="draws \\(64, 64\\) images"):
        editing.reconstruct(model, big_image, big_labels)
    with pytest.raises(InputError, match="image batch 1 != mask batch 2"):
        editing.reconstruct(model, image[:1], labels)


def test_editing_refuses_a_and_b_of_different_batches(ca2sis, batch):
    image, labels = batch
    with pytest.raises(InputError, match="mask A batch 2 != mask B batch 1"):
        editing.transfer_style(ca2sis, image, labels, image[:1], labels[:1], classes=[1])


@pytest.mark.parametrize("family", ["ca2sis", "sean"])
def test_encode_style_takes_labels_and_refuses_a_19_channel_mask(ca2sis, sean, batch, family):
    model = families(ca2sis, sean)[family]
    image, labels = batch
    with torch.no_grad():
        from_labels = model.encode_style(image, labels)
        from_one_hot = model.encode_style(image, model.prepare_mask(labels))
    assert torch.equal(from_labels, from_one_hot)
    nineteen = torch.nn.functional.one_hot(labels, 19).permute(0, 3, 1, 2).float()
    with pytest.raises(InputError, match="mask has 19 class channels but the model expects 12"):
        model.encode_style(image, nineteen)


def test_embed_mask_refuses_a_19_channel_mask_and_a_soft_one(ca2sis, batch):
    _, labels = batch
    nineteen = torch.nn.functional.one_hot(labels, 19).permute(0, 3, 1, 2).float()
    with pytest.raises(InputError, match="mask has 19 class channels but the model expects 12"):
        ca2sis.embed_mask(nineteen)
    with pytest.raises(InputError, match="values other than 0 and 1"):
        ca2sis.embed_mask(ca2sis.prepare_mask(labels) * 0.5)
    overlapping = ca2sis.prepare_mask(labels)
    overlapping[:, 3] = 1  # a hand-composed mask may overlap: accepted
    assert ca2sis.embed_mask(overlapping).shape == (2, 11, 256)



def _colour_masks(labels):
    """The label maps drawn in the toy palette, as a (B, 3, H, W) uint8 colour image."""
    from ca2sis_lib.data.toy import TOY_PALETTE
    from ca2sis_lib.masks import colour_labels

    return torch.stack([torch.from_numpy(colour_labels(label, TOY_PALETTE)).permute(2, 0, 1) for label in labels])


@pytest.mark.parametrize("scale", ["uint8", "[0, 1]", "binary"])
def test_a_colour_mask_is_called_a_colour_image_with_the_conversion_to_ids(ca2sis, sean, batch, scale):
    from ca2sis_lib.contract import check_one_hot

    image, labels = batch
    rgb = _colour_masks(labels)
    rgb = {"uint8": rgb, "[0, 1]": rgb.float() / 255, "binary": (rgb > 127).float()}[scale]
    problem = "mask looks like a colour image (an RGB colour mask), not a one-hot mask: it has 3 channels"
    fix = ("convert the colours to class ids with "
           "ca2sis_lib.data.preflight.decode_color_label(rgb, label_colors, path)",
           "then pass the labels (B, H, W) or one-hot them with ca2sis_lib.masks.labels_to_one_hot(labels, 12)")
    for call in (lambda: ca2sis(image, rgb), lambda: sean(image, rgb), lambda: check_one_hot(rgb, 12),
                 lambda: editing.reconstruct(ca2sis, image, rgb)):
        with pytest.raises(InputError) as info:
            call()
        assert str(info.value).startswith(problem) and all(part in str(info.value) for part in fix)
        assert "build the model with the dataset's class count" not in str(info.value)
    with pytest.raises(InputError, match=re.escape("labels_to_one_hot(labels, 3)")):
        check_one_hot(rgb, 3)  # a 3-class model: the channel count fits, the values do not


def test_a_colour_mask_with_channels_last_is_called_a_colour_image(ca2sis, sean, batch):
    image, labels = batch
    rgb = _colour_masks(labels).permute(0, 2, 3, 1)  # (B, H, W, 3), as images are read from disk
    for model, mask, images in ((ca2sis, rgb, image), (sean, rgb, image), (ca2sis, rgb[0], image[:1])):
        with pytest.raises(InputError, match=r"looks like a colour image with its channels last .*decode_color_label"):
            model(images, mask)


def test_a_real_three_class_one_hot_keeps_the_class_count_message(batch):
    from ca2sis_lib.contract import check_one_hot

    _, labels = batch
    three = torch.nn.functional.one_hot(labels.clamp(max=2), 3).permute(0, 3, 1, 2).float()
    check_one_hot(three, 3)
    with pytest.raises(InputError, match="mask has 3 class channels but the model expects 12; build the model"):
        check_one_hot(three, 12)
    with checks_disabled():  # no values to look at: the shape message
        with pytest.raises(InputError, match="mask has 3 class channels but the model expects 12"):
            check_one_hot(_colour_masks(labels), 12)


def test_decode_refuses_the_wrong_style_width(ca2sis, sean, batch):
    _, labels = batch
    tokens = ca2sis.embed_mask(labels)
    with pytest.raises(InputError, match=re.escape("styles must have shape (2, 12, 192)")):
        ca2sis.decode(tokens, torch.zeros(2, 12, 100))
    with pytest.raises(InputError, match=re.escape("tokens must have shape (B, 11, 256)")):
        ca2sis.decode(tokens[:, :5], torch.zeros(2, 12, 192))
    with pytest.raises(InputError, match=re.escape("styles must have shape (2, 12, 192)")):
        sean.decode(labels, torch.zeros(2, 12, 100))
    with pytest.raises(InputError, match="non-finite"):
        ca2sis.decode(tokens, torch.full((2, 12, 192), float("nan")))


def test_styles_from_noise_refuses_the_wrong_noise_width(ca2sis):
    with pytest.raises(InputError, match=re.escape("noise z must have shape (B, 16) for this model (noise_dim=16)")):
        ca2sis.styles_from_noise(torch.zeros(2, 8))
    assert ca2sis.styles_from_noise(torch.zeros(2, 16)).shape == (2, 12, 192)


def test_generate_from_noise_refuses_zero_samples(ca2sis, batch):
    _, labels = batch
    with pytest.raises(InputError, match="num_samples must be a positive integer, got 0"):
        editing.generate_from_noise(ca2sis, labels, num_samples=0)


def test_discriminator_refuses_a_soft_mask_and_a_size_it_cannot_judge(batch):
    image, labels = batch
    disc = MultiscaleDiscriminator(12)
    one_hot = torch.nn.functional.one_hot(labels, 12).permute(0, 3, 1, 2).float()
    with pytest.raises(InputError, match="values other than 0 and 1"):
        disc(one_hot * 0.7, image)
    with pytest.raises(InputError, match="too small for this discriminator.*at least 16"):
        disc(one_hot[..., :8, :8], image[..., :8, :8])
    with pytest.raises(InputError, match="looks like \\[0, 255\\]"):
        disc(one_hot, (image + 1) * 127.5)
    assert len(disc(one_hot, image.double())) == 2  # other float dtypes follow D


def test_evaluation_and_visualisers_check_their_inputs(ca2sis, batch):
    from ca2sis_lib.evaluate import evaluate_toy
    from ca2sis_lib.viz.editor import StyleShapeEditor
    from ca2sis_lib.viz.inspector import AttentionInspector

    image, labels = batch
    with pytest.raises(InputError, match="num_samples must be a positive integer"):
        evaluate_toy(ca2sis, num_samples=0)
    samples = [{"image": image[i], "label": labels[i], "name": str(i)} for i in range(2)]
    wrong = [{**s, "image": (s["image"] + 1) * 127.5} for s in samples]
    with pytest.raises(InputError, match="sample 0: image values .* looks like \\[0, 255\\]"):
        AttentionInspector(ca2sis, wrong)
    with pytest.raises(InputError, match="at least 2 sample"):
        StyleShapeEditor(ca2sis, samples[:1])
    with pytest.raises(InputError, match="sample 1 must be a dict"):
        StyleShapeEditor(ca2sis, [samples[0], image[1]])


# -- Config values ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [CA2SISConfig.tiny, SEANConfig.tiny, SPADEConfig.tiny])
def test_ignore_index_equal_to_a_real_class_is_refused(make):
    with pytest.raises(ValueError, match=re.escape("ignore_index=3 is a real class id (classes are 0..11)")):
        make(ignore_index=3)
    assert make(ignore_index=255).ignore_index == 255


@pytest.mark.parametrize("field", ["embed_resolution", "style_dim", "norm_groups"])
def test_zero_sizes_are_refused_with_the_valid_range(field):
    with pytest.raises(ValueError, match=re.escape(f"{field} must be an integer >= 1, got 0")):
        CA2SISConfig.tiny(**{field: 0})
    if field == "style_dim":
        with pytest.raises(ValueError, match=re.escape("style_dim must be an integer >= 1, got 0")):
            SEANConfig.tiny(style_dim=0)


@pytest.mark.parametrize("side", [100, 30, 700, 200])
def test_the_size_hint_suggests_only_sizes_the_config_accepts(ca2sis, side):
    hint = supported_sizes_hint(side, side)
    sizes = [int(s) for s in re.findall(r"(\d+)²", hint)]
    assert sizes
    for size in sizes:
        CA2SISConfig.tiny(image_size=size)  # accepted
    with pytest.raises(InputError) as info:
        ca2sis(torch.zeros(1, 3, side, side), torch.zeros(1, side, side, dtype=torch.long))
    assert f"image_size={side}" not in str(info.value)
    assert hint in str(info.value)


def test_the_hint_for_100_pixels_names_64_and_128():
    assert "64 or 128²" in supported_sizes_hint(100, 100)


# -- Loading and notebooks ----------------------------------------------------------------------------
def test_loading_the_segmenter_as_a_generator_says_what_to_use():
    from ca2sis_lib.loading import load_model
    from ca2sis_lib.shipped import shipped_available

    if not shipped_available("toy_segmenter"):
        pytest.skip("toy_segmenter.pt is not shipped in this checkout")
    with pytest.raises(ValueError, match=re.escape("ca2sis_lib.segmenter.load_segmenter()")):
        load_model("toy_segmenter")


def test_an_intact_shipped_file_copied_elsewhere_loads_and_a_changed_one_does_not(tmp_path):
    from ca2sis_lib.loading import load_model
    from ca2sis_lib.shipped import SHIPPED_DIR, shipped_available

    if not shipped_available("sean_tiny_toy"):
        pytest.skip("sean_tiny_toy.pt is not shipped in this checkout")
    copy = tmp_path / "my_model.pt"
    shutil.copy(SHIPPED_DIR / "sean_tiny_toy.pt", copy)
    model = load_model(copy)  # verified against the package's manifest by SHA-256
    assert isinstance(model, SEANGenerator)
    from ca2sis_lib.checkpoint_io import load_checkpoint, save_atomic

    state = load_checkpoint(copy)
    state["step"] += 1  # a readable shipped-format file that is not one of ours
    changed = save_atomic(state, tmp_path / "changed.pt")
    with pytest.raises(ValueError, match="matches no shipped file.*check=False"):
        load_model(changed)
    assert json.loads((SHIPPED_DIR / "manifest.json").read_text())  # the package's manifest is untouched



@pytest.mark.parametrize("content", ["text", "pickled module", "cut off", "empty"])
def test_loading_a_file_that_is_not_a_checkpoint_says_so_first(tmp_path, content):
    import pickle

    from ca2sis_lib.loading import load_model

    path = tmp_path / "not_a_checkpoint.pt"
    if content == "text":
        path.write_text("# README\nnot a checkpoint\n")
    elif content == "pickled module":
        torch.save({"generator": torch.nn.Linear(2, 2)}, path)
    elif content == "cut off":
        torch.save({"step": torch.zeros(1000)}, path)
        path.write_bytes(path.read_bytes()[:500])
    else:
        path.write_bytes(b"")
    with pytest.raises(ValueError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{str(path)!r} is not a ca2sis checkpoint: ")
    assert "A ca2sis checkpoint is a .pt file of tensors" in message and "runs/toy/checkpoint.pt" in message
    assert "'ca2sis_tiny_toy'" in message or "shipped model" in message
    assert "weights_only" not in message  # never torch's advice to load unsafely
    cause = info.value.__cause__  # torch's own error, kept
    assert isinstance(cause, (pickle.UnpicklingError, RuntimeError, EOFError)), type(cause)


def test_loading_the_readme_as_a_model_does_not_pass_on_torchs_advice():
    import pickle
    from pathlib import Path

    from ca2sis_lib.loading import load_model

    readme = Path(__file__).resolve().parents[1] / "README.md"
    with pytest.raises(ValueError, match=re.escape("is not a ca2sis checkpoint: torch.load cannot read it: it was not "
                                                   "written by torch.save")) as info:
        load_model(readme)
    assert "weights_only" not in str(info.value)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert "weights_only" in str(info.value.__cause__)  # torch's message stays available, chained


def test_loading_a_tensor_file_as_a_model_says_it_is_not_a_checkpoint(tmp_path):
    from ca2sis_lib.loading import load_model

    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match=r"is not a ca2sis checkpoint: it holds a Tensor, not a dict\. A ca2sis "):
        load_model(tmp_path / "tensor.pt")


def test_choose_lists_what_is_valid_and_suggests_the_closest():
    names = ["background", "skin", "l_eye", "hair"]
    assert choose("STYLE_CLASS", "hair", names) == "hair"
    with pytest.raises(ValueError, match=re.escape("STYLE_CLASS='hiar' is not valid (did you mean 'hair'?); "
                                                   "choose one of ['background', 'skin', 'l_eye', 'hair']")):
        choose("STYLE_CLASS", "hiar", names)
    with pytest.raises(ValueError, match="PRESET='nope' is not valid"):
        choose("PRESET", "nope", {"toy-ca2sis": {}, "smoke": {}})


def test_check_path_and_smoke_overrides(tmp_path, capsys):
    assert check_path("DATA", tmp_path, kind="dir") == tmp_path
    with pytest.raises(FileNotFoundError, match="DATA='.*missing': no such folder"):
        check_path("DATA", tmp_path / "missing", kind="dir")
    used = smoke_overrides(True, PRESET=("paper", "smoke"), STEPS=(300, 4), DATA=("toy", "toy"))
    assert used == {"PRESET": "smoke", "STEPS": 4, "DATA": "toy"}
    assert capsys.readouterr().out.strip() == "SMOKE=True overrides: PRESET='paper' -> 'smoke', STEPS=300 -> 4"
    assert smoke_overrides(False, STEPS=(300, 4)) == {"STEPS": 300}


@pytest.mark.parametrize("notebook, parameter, helper", [
    ("03_training", "PRESET", 'choose("PRESET", PRESET, PRESETS)'),
    ("04_attention_inspection", "QUERY_CLASS", 'choose("QUERY_CLASS", QUERY_CLASS, CLASS_NAMES)'),
    ("05_style_and_shape_editing", "STYLE_CLASS", 'choose("STYLE_CLASS", STYLE_CLASS, CLASS_NAMES)'),
])
def test_notebooks_validate_their_parameters(notebook, parameter, helper):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "notebooks" / f"{notebook}.ipynb"
    sources = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert any(helper in s for s in sources), f"{notebook} does not validate {parameter}"
