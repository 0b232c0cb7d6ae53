"""The SPADE and SEAN baselines against docs/architecture.md#the-baselines-spade-and-sean: parameter
counts, shapes, SEAN's blend, per-class style transfer, bad input, and a short reconstruction run."""

import re

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ca2sis_lib.models import (
    SPADE,
    CA2SISConfig,
    SEANConfig,
    SEANGenerator,
    SEANNorm,
    SPADEConfig,
    SPADEGenerator,
    SPADEResBlock,
    modulation_maps,
    record_modulation,
)
from ca2sis_lib.models import spade as spade_module
from ca2sis_lib.models.style_encoder import GroupedStyleEncoder


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _toy_batch(image_size, num_classes, batch=2, seed=0):
    """Nested rectangles (every class present), one random colour per class, a little noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(batch, image_size, image_size, dtype=torch.long)
    for c in range(1, num_classes):
        lo = (c * image_size) // (2 * num_classes + 2)
        labels[:, lo : image_size - lo, lo : image_size - lo - c % 3] = c
    palette = torch.rand(batch, num_classes, 3, generator=g) * 2 - 1
    image = torch.stack([palette[b, labels[b]] for b in range(batch)]).permute(0, 3, 1, 2)
    image = image + 0.05 * torch.randn(image.shape, generator=g)
    return image.clamp(-1, 1), labels


# -- SPADE ------------------------------------------------------------------------------------


def test_spade_paper_preset_has_nvidias_parameter_count_and_shapes():
    model = SPADEGenerator(SPADEConfig.paper()).eval()
    assert model.parameter_counts()["total"] == 92_538_819  # docs/architecture.md#parameter-counts: 19 classes, ngf 64,
    # 256², no VAE
    assert _count(model.decoder.fc) == 19 * 1024 * 9 + 1024
    image, labels = _toy_batch(256, 19, batch=1)
    with torch.no_grad(), record_modulation(model) as maps:  # the only paper-size forward: batch 1, no grad
        out = model(image, labels)
    assert out.image.shape == (1, 3, 256, 256)
    assert out.logits is None and out.styles is None
    assert out.image.abs().max() <= 1
    # γ/β magnitude maps, one per SPADE layer, at the resolution of the layer
    assert len(maps) == 18
    assert maps["decoder.head_0.norm_0"].gamma.shape == (1, 8, 8)
    assert maps["decoder.up_3.norm_1"].beta.shape == (1, 256, 256)


def test_spade_layer_is_batchnorm_times_one_plus_gamma_plus_beta():
    layer = SPADE(8, 5, hidden=16)
    x = torch.randn(2, 8, 6, 6)
    mask = F.one_hot(torch.randint(0, 5, (2, 12, 12)), 5).permute(0, 3, 1, 2).float()
    small = F.interpolate(mask, size=(6, 6), mode="nearest")
    gamma, beta = layer.mlp_gamma(layer.mlp_shared(small)), layer.mlp_beta(layer.mlp_shared(small))
    expected = F.batch_norm(x, None, None, training=True) * (1 + gamma) + beta
    assert torch.allclose(layer(x, mask), expected, atol=1e-5)
    assert sum(p.numel() for p in layer.param_free_norm.parameters()) == 0


def test_res_block_shortcut_and_spectral_norm():
    learned = SPADEResBlock(32, 16, label_channels=5, hidden=8)
    identity = SPADEResBlock(16, 16, label_channels=5, hidden=8)
    assert learned.learned_shortcut and not identity.learned_shortcut
    assert learned.conv_0.out_channels == 16 and learned.conv_s.bias is None
    for conv in (learned.conv_0, learned.conv_1, learned.conv_s):
        assert parametrize.is_parametrized(conv, "weight")
    mask = F.one_hot(torch.randint(0, 5, (2, 8, 8)), 5).permute(0, 3, 1, 2).float()
    assert learned(torch.randn(2, 32, 8, 8), mask).shape == (2, 16, 8, 8)


@pytest.mark.parametrize("size", [64, 128])
def test_spade_tiny_and_other_sizes(size):
    config = SPADEConfig.tiny(image_size=size)
    model = SPADEGenerator(config)
    assert config.start_size == size // 32
    image, labels = _toy_batch(size, config.num_classes)
    assert model(image, labels).image.shape == (2, 3, size, size)
    assert model(None, labels).image.shape == (2, 3, size, size)  # the image is never read


def test_modulation_maps_and_recording_switches_off():
    model = SPADEGenerator(SPADEConfig.tiny()).eval()
    _, labels = _toy_batch(64, 12)
    maps = modulation_maps(model, None, labels)
    assert list(maps)[0] == "decoder.head_0.norm_0" and maps["decoder.head_0.norm_0"].gamma.shape == (2, 2, 2)
    assert all((m.gamma >= 0).all() and (m.beta >= 0).all() for m in maps.values())
    assert all(not m.record and m.recorded is None for m in model.modules() if isinstance(m, SPADE))


# -- SEAN -------------------------------------------------------------------------------------


def test_sean_presets_share_the_ca2sis_style_encoder(monkeypatch):
    for sean, ca2sis in [(SEANConfig.paper(), CA2SISConfig.paper()), (SEANConfig.tiny(), CA2SISConfig.tiny())]:
        for name in ("image_size", "num_classes", "style_features_per_class", "style_downsamples",
                     "style_upsamples", "style_dim", "style_class_aligned"):
            assert getattr(sean, name) == getattr(ca2sis, name), name
        assert sean.style_code_dim == ca2sis.style_code_dim
    # 395 M parameters: count them on the meta device, without allocating. Spectral norm keeps the
    # parameter count and is slow to set up on meta tensors, so leave it out for this count.
    monkeypatch.setattr(spade_module, "spectral_norm", lambda conv: conv)
    with torch.device("meta"):
        model = SEANGenerator(SEANConfig.paper())
    counts = model.parameter_counts()
    assert counts["style_encoder"] == 18_069_304  # docs/architecture.md#parameter-counts, the CA²-SIS encoder
    assert counts["total"] == 395_463_705
    assert isinstance(model.style_encoder, GroupedStyleEncoder)


def test_sean_tiny_shapes_blend_at_one_half_and_plain_spade_in_the_last_block():
    model = SEANGenerator(SEANConfig.tiny())
    assert model.parameter_counts()["total"] == 2_148_329
    layers = model.sean_layers()
    assert len(layers) == 15 and not any(".up_3." in name for name in layers)
    assert all(type(m) is SPADE for m in model.decoder.up_3.modules() if isinstance(m, SPADE))
    for layer in layers.values():
        w_gamma, w_beta = layer.blend_weights()
        assert w_gamma.item() == 0.5 and w_beta.item() == 0.5
    image, labels = _toy_batch(64, 12)
    out = model(image, labels)
    assert out.image.shape == (2, 3, 64, 64) and out.styles.shape == (2, 12, 192)
    assert out.logits is None


def test_sean_norm_blends_style_and_mask_branches():
    torch.manual_seed(0)
    layer = SEANNorm(8, 4, style_dim=6, style_hidden=5, hidden=7)
    with torch.no_grad():
        layer.blend_gamma.fill_(1.0)
        layer.blend_beta.fill_(-2.0)
    mask = F.one_hot(torch.randint(0, 4, (2, 6, 6)), 4).permute(0, 3, 1, 2).float()
    styles = torch.randn(2, 4, 6)
    gamma, beta = layer.modulation(mask, styles)
    gamma_o, beta_o = layer.mask_modulation(mask)
    # the style branch by hand: K separate Linear layers, ReLU, painted into the regions
    codes = torch.stack([F.linear(styles[:, j], layer.class_projection.weight[j], layer.class_projection.bias[j])
                         for j in range(4)], dim=1).relu()  # (B, K, D')
    painted = (codes[:, :, :, None, None] * mask[:, :, None]).sum(1)  # (B, D', h, w)
    w_gamma, w_beta = torch.sigmoid(torch.tensor(1.0)), torch.sigmoid(torch.tensor(-2.0))
    assert torch.allclose(gamma, w_gamma * layer.style_gamma(painted) + (1 - w_gamma) * gamma_o, atol=1e-5)
    assert torch.allclose(beta, w_beta * layer.style_beta(painted) + (1 - w_beta) * beta_o, atol=1e-5)


def test_style_transfer_acts_only_through_styles_and_mostly_inside_the_region():
    torch.manual_seed(0)
    model = SEANGenerator(SEANConfig.tiny())
    with torch.no_grad():  # perturb every tensor by 30% of its spread, the blend scalars by ±1.5
        for p in model.parameters():
            p.add_(0.3 * (p.std() if p.numel() > 1 else 5.0) * torch.randn_like(p))
    # eval: BatchNorm uses running statistics, so pixels (and images) are not coupled by batch stats
    model.eval()
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, 8:40, 8:40], labels[:, 40:60, 30:60], labels[:, :, 60:] = 3, 5, 7
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    image[1, :, 40:60, 30:60] = torch.tensor([0.9, -0.9, 0.2]).view(3, 1, 1)  # a distinct look for class 5
    with torch.no_grad():
        one_hot = model.prepare_mask(labels)
        styles = model.encode_style(image, one_hot)
        base = model.decode(one_hot, styles).image
        assert torch.equal(model.decode(one_hot, styles).image, base)  # deterministic (no noise injection)

        absent = styles.clone()
        absent[0, 9] = styles[1, 9] + 1.0  # class 9 is not in the mask: nothing may change
        assert torch.equal(model.decode(one_hot, absent).image, base)

        swapped = styles.clone()
        swapped[0, 5] = styles[1, 5]  # image 0 takes image 1's style for class 5
        edited = model.decode(one_hot, swapped).image
    assert torch.equal(edited[1], base[1])  # the other image is untouched
    change = (edited[0] - base[0]).abs().sum(0)  # (H, W)
    region = one_hot[0, 5]
    far = F.max_pool2d(region[None, None], 17, stride=1, padding=8)[0, 0] == 0  # > 8 px from the region
    assert change[region.bool()].mean() > 1e-3
    assert change[region.bool()].mean() > 3 * change[far].mean()


def test_shape_edit_through_a_composed_mask_changes_the_image():
    model = SEANGenerator(SEANConfig.tiny()).eval()
    image, labels = _toy_batch(64, 12, batch=1)
    with torch.no_grad():
        styles = model.encode_style(image, model.prepare_mask(labels))
        edited_labels = labels.clone()
        edited_labels[:, 20:30, 20:30] = 0  # cut a hole of background into the face
        before, after = model.decode(labels, styles).image, model.decode(edited_labels, styles).image
    assert not torch.equal(before, after)


def test_sean_tiny_learns_reconstruction():
    torch.manual_seed(0)
    model = SEANGenerator(SEANConfig.tiny())
    image, labels = _toy_batch(64, 12, batch=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(10):
        loss = (model(image, labels).image - image).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]  # 0.62-0.70 over three seeds; 0.47 after 15 steps


# -- bad input and configs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda img, lab: (img, F.one_hot(lab, 13).permute(0, 3, 1, 2)), "expects 12"),
        (lambda img, lab: (img, lab + 12), "outside [0, 12)"),
        (lambda img, lab: (img, lab[:, :32, :32]), "must match"),
        (lambda img, lab: (img[:, :, :32, :32], lab[:, :32, :32]), "does not fit this model"),
        (lambda img, lab: (img[:1], lab), "batch"),
    ],
    ids=["class-count", "label-range", "size-mismatch", "unsupported-size", "batch-mismatch"],
)
@pytest.mark.parametrize("kind", ["spade", "sean"])
def test_bad_input_names_the_problem(make, message, kind):
    model = SPADEGenerator(SPADEConfig.tiny()) if kind == "spade" else SEANGenerator(SEANConfig.tiny())
    image, mask = make(*_toy_batch(64, 12))
    with pytest.raises(ValueError, match=re.escape(message)):
        model(image, mask)


def test_bad_styles_and_mask_sizes_in_decode():
    model = SEANGenerator(SEANConfig.tiny())
    _, labels = _toy_batch(64, 12)
    with pytest.raises(ValueError, match=re.escape("(2, 12, 192)")):
        model.decode(labels, torch.zeros(2, 12, 64))
    with pytest.raises(ValueError, match="must match"):
        model.decode(labels[:, :32, :32], torch.zeros(2, 12, 192))
    with pytest.raises(ValueError, match="must match"):
        SPADEGenerator(SPADEConfig.tiny()).decode(labels[:, :32, :32])


def test_configs_round_trip_and_reject_bad_values():
    for config in (SPADEConfig.paper(), SPADEConfig.tiny(), SEANConfig.paper(), SEANConfig.tiny()):
        assert type(config).from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown SEANConfig keys"):
        SEANConfig.from_dict({"imagesize": 64})
    with pytest.raises(ValueError, match="multiple of 64"):
        SPADEConfig.tiny(image_size=96)
    with pytest.raises(ValueError, match="style_downsamples"):
        SEANConfig.tiny(style_downsamples=7)  # 64 cannot be halved 7 times
