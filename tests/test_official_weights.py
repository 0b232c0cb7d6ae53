"""The authors' weights (docs/architecture.md#parameter-counts, official_state_dict.json): the name tables against the
shipped
manifest, exact loading and export, clear failures, and the functional contract.

The released files cannot be downloaded here, so every test builds a synthetic checkpoint from
the manifest. Two kinds:

- *labelled*: tensor number n of the manifest holds n + (position mod 1000) / 2000, so
  ``floor(value)`` names the tensor it came from and the fractional part shows its layout;
  finding the label at a parameter proves the tensor landed *there*, not merely somewhere of
  the right shape;
- *random*: fan-in-scaled Gaussians seeded by a hash of the name, a model that computes
  something finite and sensitive to every weight, for the functional tests.
"""

import math
import re
import zlib
from contextlib import contextmanager

import pytest
import torch

from ca2sis_lib.models import CA2SIS, CA2SISConfig, MultiscaleDiscriminator
from ca2sis_lib.official_weights import (
    DISCRIMINATOR_NAMES,
    GENERATOR_NAMES,
    convert_official,
    export_official,
    export_official_discriminator,
    load_official,
    load_official_discriminator,
    official_manifest,
    paper_config,
    read_state_dict,
)

MANIFEST = official_manifest()
G_SHAPES = MANIFEST["generator"]
D_SHAPES = MANIFEST["discriminator"]


def labelled_state_dict(shapes):
    ramp = (torch.arange(max(math.prod(s) for s in shapes.values())) % 1000).float() / 2000
    return {name: (n + ramp[: math.prod(shape)]).reshape(shape) for n, (name, shape) in enumerate(shapes.items())}


def random_state_dict(shapes):
    # one shared pool of Gaussian noise; each tensor reads its own window, placed by a hash of its name
    largest = max(math.prod(s) for s in shapes.values())
    pool = torch.randn(2 * largest, generator=torch.Generator().manual_seed(0))
    state = {}
    for name, shape in shapes.items():
        start = zlib.crc32(name.encode()) % largest
        noise = pool[start : start + math.prod(shape)].reshape(shape)
        if len(shape) > 1:  # conv / linear weights: fan-in scaled (grouped convs included)
            state[name] = noise / math.sqrt(math.prod(shape[1:]))
        elif name.endswith(("weight_u", "weight_v")):  # spectral-norm vectors: unit length
            state[name] = noise / noise.norm()
        elif name.endswith("weight"):  # GroupNorm / LayerNorm gains
            state[name] = 1 + 0.1 * noise
        else:  # biases
            state[name] = 0.1 * noise
    return state


def perturbed(state, name, index=None):
    """A shallow copy of ``state`` where tensor ``name`` (or one slice of it) changed."""
    copy = dict(state)
    copy[name] = state[name].clone()
    target = copy[name] if index is None else copy[name][index]
    target.add_(0.5)
    return copy


def toy_inputs(size=256, classes=19):
    labels = torch.zeros(1, size, size, dtype=torch.long)
    for c in range(1, classes):  # nested rectangles: every class present
        lo = (c * size) // (2 * classes + 2)
        labels[:, lo : size - lo, lo : size - lo - c % 3] = c
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return image, labels


@contextmanager
def storages_tagged_as(location):
    """While active, ``torch.save`` records every storage as living on ``location``: with
    "cuda:0" the file is what a GPU-trained model's ``torch.save`` writes, testable without a GPU.
    (Uses torch's serialization registry, a private list; the tagger with the lowest number wins.)"""
    entry = (-1, lambda storage: location, lambda storage, loc: None)
    registry = torch.serialization._package_registry
    registry.insert(0, entry)
    try:
        yield
    finally:
        registry.remove(entry)


def assert_same_state(actual, expected):
    assert list(actual) == list(expected)
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype and torch.equal(actual[key], value), key


# -- fixtures (module scope: the paper generator is 77 M parameters) -----------------------------

@pytest.fixture(scope="module")
def labelled_g():
    return labelled_state_dict(G_SHAPES)


@pytest.fixture(scope="module")
def labelled_model(labelled_g):
    return load_official(labelled_g)


@pytest.fixture(scope="module")
def random_g():
    return random_state_dict(G_SHAPES)


@pytest.fixture(scope="module")
def reference_run(random_g):
    """The random-weights model, its tokens and styles for the toy input, and its decoding."""
    model = load_official(random_g)
    image, labels = toy_inputs()
    with torch.no_grad():
        out = model(image, labels, return_attention=True)
    return model, out


# -- the manifest and the name tables ------------------------------------------------------------

def test_manifest_ships_with_the_package():
    assert len(G_SHAPES) == 388 and len(D_SHAPES) == 20
    assert sum(math.prod(s) for s in G_SHAPES.values()) == MANIFEST["generator_param_total"] == 77_229_243
    d_params = {k: s for k, s in D_SHAPES.items() if not k.endswith(("weight_u", "weight_v"))}
    assert sum(math.prod(s) for s in d_params.values()) == MANIFEST["discriminator_param_total"] == 1_364_098


def test_generator_name_table_matches_the_manifest_exactly(labelled_model):
    assert labelled_model.config == CA2SISConfig.paper()
    ours = {name: list(value.shape) for name, value in labelled_model.state_dict().items()}
    mapped = {GENERATOR_NAMES.to_official(name): shape for name, shape in ours.items()}
    assert len(mapped) == len(ours) == 388  # injective
    assert mapped == G_SHAPES
    assert {GENERATOR_NAMES.from_official(name) for name in G_SHAPES} == set(ours)


def test_discriminator_name_table_matches_the_manifest_exactly():
    model = MultiscaleDiscriminator(num_classes=19)
    mapped = {DISCRIMINATOR_NAMES.to_official(k): list(v.shape) for k, v in model.state_dict().items()}
    assert mapped == D_SHAPES
    assert DISCRIMINATOR_NAMES.from_official("discriminator_1.model2.0.0.weight_v") == "scales.1.layers.2.conv.weight_v"
    assert DISCRIMINATOR_NAMES.from_official("discriminator_0.model3.0.bias") == "scales.0.layers.3.conv.bias"


def test_names_without_a_rule_are_refused():
    assert GENERATOR_NAMES.from_official("res1.in_layers.0.weight") is None  # would be stage -1
    assert GENERATOR_NAMES.from_official("vgg.features.0.weight") is None
    assert GENERATOR_NAMES.to_official("generator.head.weight") is None


# -- the generator: each tensor in its place, exactly --------------------------------------------

def test_every_official_tensor_lands_in_its_parameter(labelled_g, labelled_model):
    index = {name: n for n, name in enumerate(G_SHAPES)}
    seen = set()
    for ours, value in labelled_model.state_dict().items():
        official = GENERATOR_NAMES.to_official(ours)
        assert torch.equal(value, labelled_g[official]), ours
        assert torch.all(value.floor() == index[official]), ours
        seen.add(official)
    assert seen == set(G_SHAPES)  # every tensor used, each once


def _block(m, stage):
    return m.generator.stages[stage].transformer.block


# Written by hand, independent of the name table: the authors' name -> our module attribute.
SPOT_CHECKS = {
    "encs.encs.0.weight": lambda m: m.mask_embedder.linear.weight,
    "reshape_conv.bias": lambda m: m.generator.input_conv.conv.bias,
    "style_encoder.Encoder.first_layer.1.weight": lambda m: m.style_encoder.first_layer[1].weight,
    "style_encoder.Encoder.enc_layer_3.0.weight": lambda m: m.style_encoder.down[3][0].weight,
    "style_encoder.Decoder.dec_layer_2.1.weight": lambda m: m.style_encoder.up[2][1].weight,
    "style_encoder.out.out_4.0.bias": lambda m: m.style_encoder.to_style[4][0].bias,
    "noise_encoder.shared.6.weight": lambda m: m.mapping.shared[6].weight,
    "noise_encoder.unshared.17.4.bias": lambda m: m.mapping.unshared[17][4].bias,
    "res2.skip_connection.weight": lambda m: m.generator.stages[0].res.skip_connection.weight,
    "res4.in_layers.2.weight": lambda m: m.generator.stages[2].res.in_layers[2].weight,
    "res6.out_layers.0.bias": lambda m: m.generator.stages[4].res.out_layers[0].bias,
    "cross2.norm.weight": lambda m: m.generator.stages[0].transformer.norm.weight,
    "cross3.transformer_blocks.0.attn1.to_k.weight": lambda m: _block(m, 1).attn1.to_k.weight,
    "cross3.transformer_blocks.0.attn1.to_v.weight": lambda m: _block(m, 1).attn1.to_v.weight,
    "cross4.transformer_blocks.0.attn2.to_k.weight": lambda m: _block(m, 2).attn2.to_k.weight,
    "cross4.transformer_blocks.0.norm1.bias": lambda m: _block(m, 2).norm1.bias,
    "cross4.transformer_blocks.0.norm3.bias": lambda m: _block(m, 2).norm3.bias,
    "cross5.transformer_blocks.0.ff.net.0.proj.weight": lambda m: _block(m, 3).ff.net[0].proj.weight,
    "cross6.transformer_blocks.0.attn2.to_out.0.bias": lambda m: _block(m, 4).attn2.to_out[0].bias,
    "cross6.proj_out.weight": lambda m: m.generator.stages[4].transformer.proj_out.weight,
    "out_conv.bias": lambda m: m.generator.out_conv.bias,
}


@pytest.mark.parametrize("official", list(SPOT_CHECKS))
def test_spot_checks_by_module_attribute(official, labelled_g, labelled_model):
    parameter = SPOT_CHECKS[official](labelled_model)
    assert torch.all(parameter.floor() == list(G_SHAPES).index(official))
    assert torch.equal(parameter, labelled_g[official])


def test_export_of_load_is_the_checkpoint_exactly(labelled_g, labelled_model):
    assert_same_state(export_official(labelled_model), labelled_g)  # names, order, dtype, values


@pytest.mark.parametrize("wrapper", ["netG", "state_dict", "generator"])
def test_dataparallel_prefix_and_training_wrappers_are_removed(labelled_g, wrapper):
    checkpoint = {"epoch": 50, wrapper: {f"module.{k}": v for k, v in labelled_g.items()}}
    assert_same_state(read_state_dict(checkpoint), labelled_g)  # what load_official then converts


def test_gpu_saved_dataparallel_file_opens_on_a_cpu(tmp_path, labelled_g):
    """The file as a model trained on a GPU under DataParallel saves it: 'cuda:0' storages and
    'module.' names. It loads on this CPU with the default map_location."""
    path = tmp_path / "latest_net_G.pth"
    with storages_tagged_as("cuda:0"):
        torch.save({f"module.{k}": v for k, v in labelled_g.items()}, path)
    if not torch.cuda.is_available():  # the file really says "cuda": a plain load fails here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    model = load_official(path)  # map_location="cpu" by default
    assert next(model.parameters()).device.type == "cpu"
    assert_same_state(export_official(model), labelled_g)


def test_a_file_that_is_not_only_tensors_is_refused_safely(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"netG": torch.nn.Linear(2, 2)}, path)  # a whole module: needs unpickling code
    with pytest.raises(ValueError, match="weights_only"):
        load_official(path)



@pytest.mark.parametrize("how", ["load_official", "load_model"])
def test_a_missing_file_says_where_the_authors_weights_come_from(how):
    from ca2sis_lib.loading import load_model

    with pytest.raises(FileNotFoundError) as info:
        if how == "load_official":
            load_official("nope/latest_net_G.pth")
        else:
            load_model("official:nope.pth")
    message = str(info.value)
    path = "nope/latest_net_G.pth" if how == "load_official" else "nope.pth"
    assert message.startswith(f"{path!r} (that is ") and " does not exist; " in message  # the problem
    for where in ("github.com/TFonta/CA2SIS", "CC BY-NC-SA 4.0", "Download it yourself",
                  'load_official("path/to/latest_net_G.pth")', 'load_model("official:path/to/latest_net_G.pth")'):
        assert where in message, where
    assert "[Errno" not in message


def test_a_folder_or_a_file_that_is_not_a_state_dict_is_refused_clearly(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"is a folder, not a file; the authors' weights are not shipped"):
        load_official(tmp_path)
    text = tmp_path / "README.md"
    text.write_text("# not weights\n")
    with pytest.raises(ValueError, match="is not a PyTorch state dict: torch.load cannot read it") as info:
        load_official(text)
    assert "github.com/TFonta/CA2SIS" in str(info.value) and "weights_only" not in str(info.value)
    assert info.value.__cause__ is not None  # torch's error, chained


def test_mismatches_are_listed(labelled_g):
    state = dict(labelled_g)
    del state["cross4.transformer_blocks.0.attn2.to_k.weight"]
    state["cross4.transformer_blocks.0.attn3.to_k.weight"] = torch.zeros(512, 1280)
    state["res3.in_layers.2.weight"] = state["res3.in_layers.2.weight"].transpose(0, 1)
    with pytest.raises(ValueError) as error:
        load_official(state)
    message = str(error.value)
    assert re.search(r"missing \(1\): cross4\.transformer_blocks\.0\.attn2\.to_k\.weight", message)
    assert re.search(r"unexpected \(1\): cross4\.transformer_blocks\.0\.attn3\.to_k\.weight", message)
    assert "wrong shape (1): res3.in_layers.2.weight (256, 128, 3, 3) != expected (128, 256, 3, 3)" in message


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: {k: v for k, v in s.items() if not k.startswith("noise_encoder.")}, r"missing \(160\)"),
        (lambda s: {**s, "extra.weight": torch.zeros(1)}, r"unexpected \(1\): extra\.weight"),
        (lambda s: {**s, "out_conv.bias": torch.zeros(4)}, r"wrong shape \(1\): out_conv\.bias"),
        (lambda s: {"epoch": 3}, "no state dict found"),
    ],
    ids=["missing", "extra", "mis-shaped", "no-state-dict"],
)
def test_each_kind_of_mismatch_fails_alone(labelled_g, edit, message):
    with pytest.raises(ValueError, match=message):  # raised before the model is built: fast
        load_official(edit(labelled_g))


def test_only_the_paper_preset_takes_the_authors_weights(labelled_g):
    config = CA2SISConfig.paper(attention_backend="reference", gradient_checkpointing=True)
    assert paper_config(config) is config  # execution options are fine
    with pytest.raises(ValueError, match="style_class_aligned"):  # same shapes, another function
        load_official(labelled_g, config=CA2SISConfig.paper(style_class_aligned=True))
    with pytest.raises(ValueError, match="paper preset"):
        export_official(CA2SIS(CA2SISConfig.tiny()))


# -- the generator: the function -----------------------------------------------------------------

@pytest.mark.slow  # a 256² pass of the paper generator: seconds on 2 cores
def test_converted_model_runs(reference_run):
    _, out = reference_run
    assert out.image.shape == (1, 3, 256, 256) and torch.isfinite(out.image).all()
    assert out.image.std() > 0.01  # a real image, not a constant
    assert all(torch.isfinite(logits).all() for logits in out.logits)


@contextmanager
def loaded(model, official_state, original):
    """Temporarily load the authors' ``official_state`` into ``model`` (through the name table);
    ``original`` is reloaded afterwards. Cheaper than building a second 77 M-parameter model."""
    model.load_state_dict(convert_official(official_state))
    try:
        yield model
    finally:
        model.load_state_dict(convert_official(original))


@pytest.mark.slow  # a 256² pass of the paper generator: seconds on 2 cores
def test_a_cross_attention_key_weight_acts_in_its_own_layer_only(random_g, reference_run):
    """cross4 is stage 2, at 64²: perturbing its to_k changes that layer's logits and the image,
    and leaves the 16² and 32² layers exactly as they were (catches an off-by-one stage)."""
    model, out = reference_run
    name = "cross4.transformer_blocks.0.attn2.to_k.weight"
    with loaded(model, perturbed(random_g, name), random_g), torch.no_grad():
        new = model.decode(out.tokens, out.styles, return_attention=True)
    assert torch.equal(new.attention["cross@16"], out.attention["cross@16"])
    assert torch.equal(new.attention["cross@32"], out.attention["cross@32"])
    assert not torch.allclose(new.attention["cross@64"], out.attention["cross@64"])
    assert (new.image - out.image).abs().max() > 1e-3


@pytest.mark.slow  # a 256² pass of the paper generator: seconds on 2 cores
def test_the_mapping_network_does_not_touch_decoding(random_g, reference_run):
    """Perturbing class 5's head of ``noise_encoder`` changes class 5's noise-driven code only
    (head order = class order) and leaves the decoded image bit-identical."""
    model, out = reference_run
    z = torch.randn(2, 16)
    with torch.no_grad():
        before = model.styles_from_noise(z)
        with loaded(model, perturbed(random_g, "noise_encoder.unshared.5.6.bias"), random_g):
            image = model.decode(out.tokens, out.styles).image
            after = model.styles_from_noise(z)
    assert torch.equal(image, out.image)
    changed = (before != after).any(dim=-1)  # (B, K)
    assert changed[:, 5].all() and not changed[:, torch.arange(19) != 5].any()


@pytest.mark.slow  # a 256² pass of the paper generator: seconds on 2 cores
def test_style_levels_and_class_groups_keep_their_order(random_g, reference_run):
    """``out_0`` is the coarsest level (first 256 dims) and its bias block c belongs to class c."""
    model, out = reference_run
    image, labels = toy_inputs()
    bias_of_class_3 = perturbed(random_g, "style_encoder.out.out_0.0.bias", index=slice(3 * 256, 4 * 256))
    with loaded(model, bias_of_class_3, random_g), torch.no_grad():
        styles = model.encode_style(image, model.prepare_mask(labels))
    changed = (styles != out.styles).any(dim=0)  # (K, 1280)
    assert changed[3, :256].all()
    assert changed.sum() == 256  # nothing else moved


# -- the discriminator -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def labelled_d():
    return labelled_state_dict(D_SHAPES)


def test_discriminator_tensors_land_in_place_and_round_trip(labelled_d):
    model = load_official_discriminator(labelled_d)
    index = {name: n for n, name in enumerate(D_SHAPES)}
    for ours, value in model.state_dict().items():
        official = DISCRIMINATOR_NAMES.to_official(ours)
        assert torch.equal(value, labelled_d[official]) and torch.all(value.floor() == index[official]), ours
    conv = model.scales[1].layers[2].conv  # by attribute, independent of the table
    assert torch.equal(conv.weight_orig, labelled_d["discriminator_1.model2.0.0.weight_orig"])
    assert torch.equal(conv.weight_u, labelled_d["discriminator_1.model2.0.0.weight_u"])
    assert torch.equal(conv.weight_v, labelled_d["discriminator_1.model2.0.0.weight_v"])
    assert torch.equal(model.scales[0].layers[0].conv.bias, labelled_d["discriminator_0.model0.0.bias"])
    assert_same_state(export_official_discriminator(model), labelled_d)


def test_discriminator_file_prefix_wrapper_and_gpu(tmp_path, labelled_d):
    path = tmp_path / "latest_net_D.pth"
    with storages_tagged_as("cuda:0"):
        torch.save({"state_dict": {f"module.{k}": v for k, v in labelled_d.items()}}, path)
    assert_same_state(export_official_discriminator(load_official_discriminator(path)), labelled_d)


def test_discriminator_mismatches_are_listed(labelled_d):
    state = dict(labelled_d)
    del state["discriminator_0.model1.0.0.weight_u"]
    state["discriminator_2.model0.0.weight"] = torch.zeros(64, 22, 4, 4)
    state["discriminator_1.model0.0.weight"] = torch.zeros(64, 23, 4, 4)  # a 20-class D
    with pytest.raises(ValueError) as error:
        load_official_discriminator(state)
    message = str(error.value)
    assert "missing (1): discriminator_0.model1.0.0.weight_u" in message
    assert "unexpected (1): discriminator_2.model0.0.weight" in message
    assert "discriminator_1.model0.0.weight (64, 23, 4, 4) != expected (64, 22, 4, 4)" in message
    with pytest.raises(ValueError, match="wrong shape"):
        export_official_discriminator(MultiscaleDiscriminator(num_classes=20))


def test_converted_discriminator_runs_and_its_scales_are_in_order():
    state = random_state_dict(D_SHAPES)
    model = load_official_discriminator(state)
    image, labels = toy_inputs()
    mask = torch.nn.functional.one_hot(labels, 19).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        out = model(mask, image)
        other = load_official_discriminator(perturbed(state, "discriminator_1.model3.0.bias"))(mask, image)
    assert [tuple(f[-1].shape) for f in out] == [(1, 1, 34, 34), (1, 1, 18, 18)]
    assert all(torch.isfinite(f).all() for features in out for f in features)
    assert torch.equal(other[0][-1], out[0][-1])  # discriminator_1 is the half-resolution scale
    assert torch.allclose(other[1][-1], out[1][-1] + 0.5, atol=1e-5)


def test_integer_weights_are_refused_and_non_finite_weights_are_named(random_g, tmp_path):
    """load_official copied int64 weights (a conversion that cut off every fraction) into the float
    model without a word, and loaded NaN weights (a diverged run's) without a warning."""
    from ca2sis_lib.checkpoint_io import NonFiniteWeightsWarning

    key = next(k for k, v in random_g.items() if v.is_floating_point() and v.numel() > 100)
    torch.save({**random_g, key: (random_g[key] * 10).long()}, tmp_path / "integers.pth")
    with pytest.raises(ValueError, match=r"integers.pth: 1 weight tensor\(s\) hold integers where the model's "
                                         r"weights are floating point \(e.g. .* \(torch.int64\)\): their fractions"):
        load_official(tmp_path / "integers.pth")
    broken = {**random_g, key: random_g[key].clone()}
    broken[key].view(-1)[3] = float("nan")
    with pytest.warns(NonFiniteWeightsWarning, match=r"1 of 388 weight tensors hold NaN or inf values .* draws NaN "
                                                     r"images. Fix: load an earlier checkpoint") as caught:
        load_official(broken)
    assert caught[0].filename == __file__  # it points at the line that loaded them
