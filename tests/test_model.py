"""The CA²-SIS model against docs/architecture.md: parameter counts, shapes, initial behaviour, bad input."""

import math
import re

import pytest
import torch

from ca2sis_lib.losses import attention_loss
from ca2sis_lib.masks import as_one_hot
from ca2sis_lib.models import CA2SIS, CA2SISConfig
from ca2sis_lib.models.style_encoder import GroupedStyleEncoder


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return CA2SIS(CA2SISConfig.paper()).eval()


def _toy_batch(config, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    size = config.image_size
    labels = torch.zeros(batch, size, size, dtype=torch.long)
    for c in range(1, config.num_classes):  # nested rectangles so every class is present
        lo = (c * size) // (2 * config.num_classes + 2)
        labels[:, lo : size - lo, lo : size - lo - c % 3] = c
    palette = torch.rand(batch, config.num_classes, 3, generator=g) * 2 - 1  # a colour per class
    image = torch.stack([palette[b, labels[b]] for b in range(batch)]).permute(0, 3, 1, 2)
    image = image + 0.05 * torch.randn(image.shape, generator=g)
    return image.clamp(-1, 1), labels


def test_paper_parameter_counts_match_the_authors(paper_model):
    counts = paper_model.parameter_counts()
    assert counts["total"] == 77_229_243
    assert counts["mask_embedder"] == 4_194_560
    assert counts["style_encoder"] == 18_069_304
    assert counts["mapping"] == 28_244_224
    assert counts["decoder"] == 26_721_155
    stages = paper_model.generator.stages
    assert _count(paper_model.generator.input_conv) == 9_728
    assert [_count(s.res) for s in stages] == [1_902_848, 476_288, 119_360, 29_984, 18_624]
    assert [_count(s.transformer) for s in stages] == [6_301_440, 6_169_984, 6_104_256, 5_021_280, 567_264]
    assert _count(paper_model.generator.out_conv) == 99
    assert counts["total"] - counts["mapping"] == 48_985_019


def test_paper_shapes_and_initial_behaviour(paper_model):
    config = paper_model.config
    image, labels = _toy_batch(config)
    with torch.no_grad():
        out = paper_model(image, labels, return_attention=True)
    assert out.styles.shape == (2, 19, 1280)
    assert out.tokens.shape == (2, 18, 256)
    assert out.image.shape == (2, 3, 256, 256)
    shapes = [tuple(a.shape) for a in out.attention.values()]
    assert shapes == [(2, 8, 19, 16, 16), (2, 8, 19, 32, 32), (2, 8, 19, 64, 64), (2, 8, 19, 128, 128),
                      (2, 4, 19, 256, 256)]
    assert abs(attention_loss(out.logits, paper_model.prepare_mask(labels)).item() - math.log(2)) < 5e-3


def test_attention_loss_is_ln2_at_initialisation():
    # One random init lands within about ±2e-3 of ln 2 (logits are small but not zero); the
    # expectation over initialisations is ln 2, so average five seeds.
    config = CA2SISConfig.paper()
    image, labels = _toy_batch(config, batch=1)
    losses = []
    for seed in range(5):
        torch.manual_seed(seed)
        with torch.no_grad():
            model = CA2SIS(config).eval()
            losses.append(attention_loss(model(image, labels).logits, model.prepare_mask(labels)).item())
    assert abs(sum(losses) / len(losses) - math.log(2)) < 1e-3


def test_class_balanced_attention_loss_weights_positives_by_neg_over_pos():
    import torch.nn.functional as F

    torch.manual_seed(0)
    logits = torch.randn(1, 2, 2, 2, 2)  # (B, heads, K, h, w)
    labels = torch.tensor([[[0, 0], [0, 1]]])  # class 1 has one pixel of four
    one_hot = F.one_hot(labels, 2).permute(0, 3, 1, 2).float()
    mean_logits = logits.mean(1)
    # the authors' loss: plain BCE averaged over pixels and classes
    plain = F.binary_cross_entropy_with_logits(mean_logits, one_hot)
    assert torch.allclose(attention_loss([logits], one_hot), plain)
    assert torch.allclose(attention_loss([logits], one_hot, pos_weight_max=0.0), plain)
    # balanced: class 0 (3 pos, 1 neg) gets weight max(1/3, 1) = 1, class 1 (1 pos, 3 neg) gets 3
    bce = F.binary_cross_entropy_with_logits(mean_logits, one_hot, reduction="none")
    weight = 1 + one_hot * torch.tensor([0.0, 2.0])[None, :, None, None]
    assert torch.allclose(attention_loss([logits], one_hot, pos_weight_max=10.0), (bce * weight).mean())
    # the clamp: at most pos_weight_max
    weight = 1 + one_hot * torch.tensor([0.0, 1.0])[None, :, None, None]
    assert torch.allclose(attention_loss([logits], one_hot, pos_weight_max=2.0), (bce * weight).mean())


def test_every_spatial_transformer_is_the_identity_at_init():
    model = CA2SIS(CA2SISConfig.tiny()).eval()
    styles = torch.randn(2, model.config.num_classes, model.config.style_code_dim)
    with torch.no_grad():
        for stage in model.generator.stages:
            x = torch.randn(2, stage.transformer.proj_in.in_channels, 8, 8)
            y, _ = stage.transformer(x, styles)
            assert torch.equal(x, y)
            # ... and every ResBlock equals its skip path (zero-initialised output conv)
            r = torch.randn(2, stage.res.in_layers[0].num_channels, 8, 8)
            skip_in = torch.nn.functional.interpolate(r, scale_factor=2.0) if stage.res.upsample else r
            assert torch.equal(stage.res(r), stage.res.skip_connection(skip_in))


def test_decode_returns_the_logits_that_forward_returns():
    """L_att needs only the per-layer logits: decode from parts gives the same image and logits as
    forward, and asking for the named attention maps changes nothing."""
    model = CA2SIS(CA2SISConfig.tiny()).eval()
    for p in model.parameters():  # break the zero-init so the transformers matter
        p.data.add_(0.05 * torch.randn_like(p))
    image, labels = _toy_batch(model.config)
    one_hot = model.prepare_mask(labels)
    with torch.no_grad():
        tokens, styles = model.embed_mask(one_hot), model.encode_style(image, one_hot)
        parts = model.decode(tokens, styles, return_attention=True)
        whole = model(image, labels)
    assert whole.attention is None and list(parts.attention) == model.attention_layer_names()
    assert torch.equal(parts.image, whole.image)
    assert all(torch.equal(a, b) for a, b in zip(parts.logits, whole.logits))


def test_tiny_preset_is_small_and_keeps_every_element():
    config = CA2SISConfig.tiny()
    model = CA2SIS(config)
    counts = model.parameter_counts()
    assert counts["total"] - counts["mapping"] <= 5_000_000
    assert len(config.stages) >= 3 and all(True for _ in config.stages)
    assert config.stages[0].self_attention and not config.stages[-1].self_attention
    assert config.style_upsamples >= 2 and counts["mapping"] > 0


def test_parameters_without_mapping_leave_out_the_mapping_network_only():
    """The count notebooks 00 and 02 print for "the generator a reconstruction uses"."""
    from ca2sis_lib.models import SEANConfig, SEANGenerator
    from ca2sis_lib.models.factory import MAPPING_PREFIX

    for model in (CA2SIS(CA2SISConfig.tiny()), SEANGenerator(SEANConfig.tiny())):
        by_name = sum(p.numel() for name, p in model.named_parameters() if not name.startswith(MAPPING_PREFIX))
        assert model.parameters_without_mapping() == by_name
    assert CA2SIS(CA2SISConfig.tiny()).parameters_without_mapping() == 2_697_875


def test_tiny_style_encoder_sees_a_one_pixel_class():
    """The tiny preset reads its finest style level at the full 64² (3 down, 3 up): a class of one
    pixel, as eyes nearly are at 64², still gets a code of its own. Read at 32² (the paper's ratio of
    levels), nearest resizing drops that pixel and the class looks absent: code tanh(bias)."""
    config = CA2SISConfig.tiny()
    encoder = CA2SIS(config).style_encoder.eval()
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    without = as_one_hot(labels, config.num_classes)
    labels[0, 33, 33] = 3  # odd row and column: nearest resizing to 32² or coarser skips it
    with_pixel = as_one_hot(labels, config.num_classes)
    finest = slice(-config.style_dim, None)  # levels are concatenated coarsest first
    assert (encoder(image, with_pixel)[0, 3, finest] - encoder(image, without)[0, 3, finest]).abs().max() > 1e-3
    coarse = GroupedStyleEncoder(config.num_classes, config.style_features_per_class, downsamples=4, upsamples=3,
                                 style_dim=config.style_dim).eval()
    assert torch.equal(coarse(image, with_pixel)[0, 3], coarse(image, without)[0, 3])  # the pixel is lost


def test_config_sizes_up_to_512():
    config = CA2SISConfig.paper(image_size=512, embed_resolution=256)
    assert config.token_size == 32 and config.style_code_dim == 1280
    with pytest.raises(ValueError, match="multiple of 64"):
        CA2SISConfig.paper(image_size=576)


@pytest.mark.parametrize("size", [64, 128, 192, 320])
def test_config_supports_multiples_of_64(size):
    config = CA2SISConfig.tiny(image_size=size, embed_resolution=32, num_classes=5, exclude_background=False)
    model = CA2SIS(config).eval()
    image, labels = _toy_batch(config, batch=1)
    with torch.no_grad():
        out = model(image, labels)
    assert out.image.shape == (1, 3, size, size)
    assert out.tokens.shape[1] == 5


def test_sdpa_and_reference_attention_agree():
    model = CA2SIS(CA2SISConfig.tiny()).eval()
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    image, labels = _toy_batch(model.config)
    with torch.no_grad():
        fast = model(image, labels).image
        model.set_attention_backend("reference")
        slow = model(image, labels).image
    assert (fast - slow).abs().max().item() < 1e-5


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(1)
    plain = CA2SIS(CA2SISConfig.tiny())
    for p in plain.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    ckpt = CA2SIS(CA2SISConfig.tiny(gradient_checkpointing=True))
    ckpt.load_state_dict(plain.state_dict())
    image, labels = _toy_batch(plain.config)
    grads = []
    for model in (plain, ckpt):
        model.train()
        out = model(image, labels)
        (out.image.square().mean() + attention_loss(out.logits, model.prepare_mask(labels))).backward()
        grads.append(model.generator.stages[0].transformer.block.attn2.to_k.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_tiny_preset_learns_reconstruction():
    torch.manual_seed(0)
    model = CA2SIS(CA2SISConfig.tiny())
    image, labels = _toy_batch(model.config, batch=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(50):
        out = model(image, labels)
        reconstruction = (out.image - image).abs().mean()
        attn = attention_loss(out.logits, model.prepare_mask(labels))
        optimiser.zero_grad()
        (reconstruction + attn).backward()
        optimiser.step()
        losses.append((reconstruction.item(), attn.item()))
    assert losses[-1][0] < 0.5 * losses[0][0]  # L1 reconstruction at least halves
    assert losses[-1][1] < 0.5 * losses[0][1]  # and the attention maps move toward the mask


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda c, img, lab: (img, torch.nn.functional.one_hot(lab, c.num_classes + 1).permute(0, 3, 1, 2)),
         "expects 12"),
        (lambda c, img, lab: (img, lab + c.num_classes), "outside [0, 12)"),
        (lambda c, img, lab: (img, lab[:, :32, :32]), "must match"),
        (lambda c, img, lab: (img[:, :, :32, :32], lab[:, :32, :32]), "does not fit this model"),
        (lambda c, img, lab: (img, 0.5 * torch.nn.functional.one_hot(lab, c.num_classes).permute(0, 3, 1, 2)),
         "other than 0 and 1"),
        (lambda c, img, lab: (img, torch.ones(2, c.num_classes, 64, 64)), "not one-hot"),
    ],
    ids=["class-count", "label-range", "size-mismatch", "unsupported-size", "soft-one-hot", "multi-hot"],
)
def test_bad_input_names_the_problem(make, message):
    config = CA2SISConfig.tiny()
    model = CA2SIS(config)
    image, labels = _toy_batch(config)
    image, mask = make(config, image, labels)
    with pytest.raises(ValueError, match=re.escape(message)):
        model(image, mask)


def test_ignore_label_is_allowed_only_when_configured():
    image, labels = _toy_batch(CA2SISConfig.tiny())
    labels[:, :4] = 255
    with pytest.raises(ValueError, match="outside"):
        CA2SIS(CA2SISConfig.tiny())(image, labels)
    model = CA2SIS(CA2SISConfig.tiny(ignore_index=255))
    out = model(image, labels)
    assert torch.isfinite(attention_loss(out.logits, model.prepare_mask(labels)))


def test_config_round_trip_and_unknown_keys():
    config = CA2SISConfig.paper()
    assert CA2SISConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown CA2SISConfig keys"):
        CA2SISConfig.from_dict({"imagesize": 64})
    with pytest.raises(ValueError, match="multiple of 64"):
        CA2SISConfig.tiny(image_size=96)


def test_memory_mode_token_chunks_are_exact():
    """Memory mode runs cross-attention + feed-forward over token chunks, recomputed in backward."""
    from ca2sis_lib.models.blocks import TransformerBlock

    torch.manual_seed(0)
    for self_attention in (False, True):
        block = TransformerBlock(16, 2, 8, self_attention, 4, "sdpa")
        for p in block.parameters():
            p.data.add_(0.1 * torch.randn_like(p))
        x, styles = torch.randn(2, 23, 16, requires_grad=True), torch.randn(2, 5, 8)
        results = []
        for chunk in (0, 5):  # 23 tokens -> chunks of 5, 5, 5, 5, 3
            block.chunk_tokens = chunk
            out, logits = block(x, styles)
            (grad,) = torch.autograd.grad(out.square().sum() + logits.square().sum(), x)
            results.append((out, logits, grad))
        for whole, chunked in zip(*results):
            assert torch.allclose(whole, chunked, atol=1e-5)
    paper = CA2SIS(CA2SISConfig.paper(gradient_checkpointing=True))
    assert all(stage.transformer.block.chunk_tokens == 4096 for stage in paper.generator.stages)
    assert CA2SIS(CA2SISConfig.tiny()).generator.stages[0].transformer.block.chunk_tokens == 0


def _saved_bytes(fn) -> int:
    """Bytes of the distinct storages autograd keeps for backward while ``fn`` runs."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


@pytest.mark.parametrize("rows", [2048, 7])  # one block, and many blocks with a ragged last one
def test_lean_feed_forward_equals_the_plain_path_and_keeps_less_for_backward(rows, monkeypatch):
    from ca2sis_lib.models.blocks import FeedForward
    from ca2sis_lib.models.memory_saving import BlockedGEGLUFeedForward

    monkeypatch.setattr(BlockedGEGLUFeedForward, "ROWS", rows)
    torch.manual_seed(0)
    ff = FeedForward(32, 4)
    x = torch.randn(2, 300, 32, requires_grad=True)
    weights = torch.linspace(-1, 1, 32)
    results, saved = [], []
    for lean in (True, False):
        ff.lean, x.grad = lean, None
        ff.zero_grad()
        saved.append(_saved_bytes(lambda: (ff(x) * weights).sum().backward()))
        results.append([ff(x).detach(), x.grad.clone()] + [p.grad.clone() for p in ff.parameters()])
    for lean_value, plain_value in zip(*results):  # float rounding: weight gradients are summed block by block
        assert (lean_value - plain_value).abs().max() <= 2e-6 * plain_value.abs().max()
    # plain: proj input, [a, gate], GELU(gate), the product; lean: the input, a and gate only
    width = x.numel() * 4  # bytes of one (2, 300, 32) float tensor
    assert saved[0] <= saved[1] - 2 * 4 * width + width // 2
    # exact gradients (float64) of the fused function, both biases included, over ragged blocks
    monkeypatch.setattr(BlockedGEGLUFeedForward, "ROWS", 4)
    tensors = [torch.randn(*shape, dtype=torch.float64, requires_grad=True)
               for shape in ((3, 5, 6), (16, 6), (16,), (6, 8), (6,))]  # x, w_in, b_in, w_out, b_out
    assert torch.autograd.gradcheck(BlockedGEGLUFeedForward.apply, tensors)
    # without gradients (inference) the plain modules run: same output
    with torch.no_grad():
        ff.lean = True
        assert torch.equal(ff(x), ff.net(x))


def test_lean_feed_forward_under_bf16_autocast():
    from ca2sis_lib.models.blocks import FeedForward

    torch.manual_seed(0)
    ff = FeedForward(16, 4)
    x = torch.randn(2, 40, 16, requires_grad=True)
    grads = []
    for lean in (True, False):
        ff.lean, x.grad = lean, None
        ff.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = ff(x)
        assert y.dtype == torch.bfloat16
        y.float().sum().backward()
        grads.append((y.detach().float(), x.grad.clone(), ff.net[2].weight.grad.clone()))
    for lean_value, plain_value in zip(*grads):
        assert torch.allclose(lean_value, plain_value, rtol=2e-2, atol=2e-2)


def test_each_family_says_whether_it_attends_and_how_wide_its_noise_is():
    from ca2sis_lib.models.interface import is_cross_attention
    from ca2sis_lib.models.sean import SEANConfig, SEANGenerator
    from ca2sis_lib.models.spade import SPADEConfig, SPADEGenerator

    ca2sis = CA2SIS(CA2SISConfig.tiny())
    assert is_cross_attention(ca2sis) and ca2sis.noise_dim == ca2sis.config.noise_dim == 16
    for baseline in (SEANGenerator(SEANConfig.tiny()), SPADEGenerator(SPADEConfig.tiny())):
        assert not is_cross_attention(baseline) and baseline.noise_dim == 0  # no mapping network: no noise
