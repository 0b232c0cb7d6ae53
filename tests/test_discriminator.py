"""The multiscale PatchGAN discriminator (docs/architecture.md#discriminator-and-training-losses):
size, layer structure, outputs, bad input."""

import re

import pytest
import torch
import torch.nn.functional as F

from ca2sis_lib.models import MultiscaleDiscriminator
from ca2sis_lib.models.discriminator import downsample


def _inputs(batch=2, classes=19, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (batch, size, size), generator=g)
    mask = F.one_hot(labels, classes).permute(0, 3, 1, 2).float()
    image = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    return mask, image


def test_paper_discriminator_has_the_authors_parameter_count():
    d = MultiscaleDiscriminator(num_classes=19)
    assert sum(p.numel() for p in d.parameters()) == 1_364_098  # docs/architecture.md#parameter-counts, 2 × 682,049
    # spectral-norm power-iteration vectors are buffers, not parameters
    buffers = dict(d.named_buffers())
    assert sorted(buffers) == sorted(
        f"scales.{s}.layers.{i}.conv.weight_{uv}" for s in range(2) for i in (1, 2) for uv in "uv"
    )
    assert buffers["scales.0.layers.2.conv.weight_v"].shape == (128 * 4 * 4,)


def test_layer_structure_follows_spec():
    d = MultiscaleDiscriminator(num_classes=19)
    for scale in d.scales:
        convs = [layer.conv for layer in scale.layers]
        assert [(c.in_channels, c.out_channels) for c in convs] == [(22, 64), (64, 128), (128, 256), (256, 1)]
        assert [c.stride for c in convs] == [(2, 2), (2, 2), (2, 2), (1, 1)]
        assert all(c.kernel_size == (4, 4) and c.padding == (2, 2) for c in convs)
        # spectral norm (weight_orig) and no bias exactly on the two inner convs, which are instance-normalised
        assert [hasattr(c, "weight_orig") for c in convs] == [False, True, True, False]
        assert [c.bias is None for c in convs] == [False, True, True, False]
        norms = [layer.norm for layer in scale.layers]
        assert [isinstance(n, torch.nn.InstanceNorm2d) and not n.affine for n in norms] == [False, True, True, False]
        acts = [layer.act for layer in scale.layers]
        assert [isinstance(a, torch.nn.LeakyReLU) and a.negative_slope == 0.2 for a in acts] == [True] * 3 + [False]


def test_outputs_every_layer_of_every_scale():
    d = MultiscaleDiscriminator(num_classes=19)
    mask, image = _inputs(size=64)
    out = d(mask, image)
    assert len(out) == 2 and all(len(features) == 4 for features in out)
    for scale, features in enumerate(out):
        size = 64 // 2**scale
        expected = []
        for channels in (64, 128, 256):  # Conv4×4 s2 p2: n -> n // 2 + 1
            size = size // 2 + 1
            expected.append((2, channels, size, size))
        expected.append((2, 1, size + 1, size + 1))  # Conv4×4 s1 p2: one pixel larger
        assert [tuple(f.shape) for f in features] == expected


def test_second_scale_sees_the_average_pooled_input():
    d = MultiscaleDiscriminator(num_classes=19).eval()
    mask, image = _inputs(size=64)
    x = torch.cat([mask, image], dim=1)
    pooled = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    assert torch.equal(downsample(x), pooled)
    # border pixels average only the pixels inside the image: a constant input stays constant
    assert torch.allclose(downsample(torch.ones(1, 1, 8, 8)), torch.ones(1, 1, 4, 4))
    with torch.no_grad():
        out = d(mask, image)
        assert torch.equal(out[0][-1], d.scales[0](x)[-1])
        assert torch.equal(out[1][-1], d.scales[1](pooled)[-1])


def test_fake_and_real_in_one_batch_equal_two_calls_in_eval_mode():
    d = MultiscaleDiscriminator(num_classes=19).eval()
    mask, real = _inputs(batch=2, size=64, seed=1)
    fake = torch.rand_like(real) * 2 - 1
    with torch.no_grad():
        joint = d(torch.cat([mask, mask]), torch.cat([fake, real]))
        separate = d(mask, fake), d(mask, real)
    for s in range(2):
        for f_joint, f_fake, f_real in zip(joint[s], separate[0][s], separate[1][s]):
            assert torch.allclose(f_joint[:2], f_fake, atol=1e-5)
            assert torch.allclose(f_joint[2:], f_real, atol=1e-5)


def test_spectral_norm_divides_by_the_stored_estimate():
    d = MultiscaleDiscriminator(num_classes=19).train()
    conv = d.scales[0].layers[1].conv
    with torch.no_grad():
        conv(torch.randn(1, 64, 8, 8))  # train mode: one power-iteration step updates u and v
        raw = conv.weight_orig.flatten(1)
        sigma = conv.weight_u @ raw @ conv.weight_v  # the estimate of raw's largest singular value
        assert torch.allclose(conv.weight.flatten(1), raw / sigma)
        # so the effective weights, and D, do not care how large the raw weights are
        d.eval()  # eval mode: u and v frozen, the weight still recomputed from weight_orig
        mask, image = _inputs(batch=1, size=32)
        before = d(mask, image)
        for scale in d.scales:
            for layer in scale.layers[1:3]:
                layer.conv.weight_orig.mul_(10.0)
        after = d(mask, image)
    for features_before, features_after in zip(before, after):
        for b, a in zip(features_before, features_after):
            assert torch.allclose(a, b, atol=1e-5)


def test_gradients_reach_the_image():
    d = MultiscaleDiscriminator(num_classes=5)
    mask, image = _inputs(batch=1, classes=5, size=32)
    image.requires_grad_(True)
    out = d(mask, image)
    sum(features[-1].mean() for features in out).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_other_sizes():
    d = MultiscaleDiscriminator(num_classes=7, num_scales=3, base_channels=16, num_layers=2)
    mask, image = _inputs(batch=1, classes=7, size=64)
    out = d(mask, image)
    assert len(out) == 3 and all(len(features) == 3 for features in out)
    assert [features[-1].shape[1] for features in out] == [1, 1, 1]
    assert out[0][1].shape[1] == 32


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda m, i: (m[:, :18], i), "(B, 19, H, W)"),
        (lambda m, i: (m[0], i), "(B, 19, H, W)"),
        (lambda m, i: (m, i[:, :1]), "(B, 3, H, W)"),
        (lambda m, i: (m[:, :, :32, :32], i), "same batch size and spatial size"),
        (lambda m, i: (m[:1], i), "same batch size and spatial size"),
    ],
    ids=["class-count", "mask-dims", "image-channels", "size-mismatch", "batch-mismatch"],
)
def test_bad_input_names_the_problem(make, message):
    d = MultiscaleDiscriminator(num_classes=19)
    mask, image = make(*_inputs(size=64))
    with pytest.raises(ValueError, match=re.escape(message)):
        d(mask, image)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="num_scales=0"):
        MultiscaleDiscriminator(num_classes=19, num_scales=0)
