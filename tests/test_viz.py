"""ca2sis_lib.viz: recordings are faithful, metrics have known answers, the inspector is lazy.

A tiny CA²-SIS with every parameter nudged by 0.05·randn (so the zero-initialised transformer
outputs are no longer the identity and the maps are not uniform) and two label maps of nested
rectangles; everything runs on the CPU without a kernel or a browser.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import perturbed_tiny_ca2sis
from matplotlib.figure import Figure

from ca2sis_lib import viz
from ca2sis_lib.losses import attention_loss
from ca2sis_lib.models import CA2SIS
from ca2sis_lib.viz.inspector import AttentionInspector, InspectorApp

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _labels(size: int, num_classes: int, shift: int = 0) -> torch.Tensor:
    labels = torch.zeros(size, size, dtype=torch.long)
    for c in range(1, num_classes):  # nested rectangles: every class present, none symmetric
        lo = (c * size) // (2 * num_classes + 2)
        labels[lo + shift : size - lo, lo : size - lo - c % 3] = c
    return labels


@pytest.fixture(scope="module")
def model() -> CA2SIS:
    return perturbed_tiny_ca2sis()


@pytest.fixture(scope="module")
def batch(model):
    config = model.config
    labels = torch.stack([_labels(config.image_size, config.num_classes, s) for s in (0, 3)])
    g = torch.Generator().manual_seed(1)
    colours = torch.rand(config.num_classes, 3, generator=g) * 2 - 1
    image = colours[labels].permute(0, 3, 1, 2) + 0.1 * torch.randn(2, 3, 64, 64, generator=g)
    return image.clamp(-1, 1), labels


@pytest.fixture(scope="module")
def rec(model, batch):
    return viz.record_attention(model, *batch)


# -- recording -------------------------------------------------------------------------------------
def test_recording_has_every_layer_with_the_model_shapes(model, rec):
    assert rec.layer_names == model.attention_layer_names() == ["cross@16", "cross@32", "cross@64"]
    assert [tuple(rec.logits[n].shape) for n in rec.layer_names] == [(2, 4, 12, 16, 16), (2, 4, 12, 32, 32),
                                                                     (2, 2, 12, 64, 64)]
    assert list(rec.self_attention_inputs) == list(model.self_attention_layers()) == ["cross@16", "cross@32"]
    assert rec.self_attention_inputs["cross@32"].shape == (2, 32 * 32, 128)
    for name in rec.layer_names:  # the maps are not uniform: the perturbation did its job
        assert rec.mean_probs(name).std() > 1e-3


def test_softmax_sums_to_one_over_classes(rec):
    for name in rec.layer_names:
        assert torch.allclose(rec.probs(name).sum(dim=2), torch.ones(1), atol=1e-5)
        assert torch.allclose(rec.mean_probs(name).sum(dim=1), torch.ones(1), atol=1e-5)
        assert torch.allclose(rec.attention_map(name, head=1).sum(dim=1), torch.ones(1), atol=1e-5)
    distribution = rec.pixel_distribution(10, 40, sample=1)
    assert all(abs(float(d.sum()) - 1) < 1e-5 for d in distribution.values())


def test_head_average_is_what_the_attention_loss_uses(rec):
    assert rec.attn_loss is not None
    ours = attention_loss(list(rec.logits.values()), rec.one_hot)
    assert abs(float(ours) - rec.attn_loss) < 1e-6
    by_hand = torch.stack([  # BCE of the head-averaged logits against the resized mask, per layer
        F.binary_cross_entropy_with_logits(rec.mean_logits(n), rec.target(n)) for n in rec.layer_names
    ]).mean()
    assert abs(float(by_hand) - rec.attn_loss) < 1e-6
    for name in rec.layer_names:
        assert torch.equal(rec.mean_logits(name), rec.logits[name].mean(dim=1))


def test_recording_leaves_the_output_bitwise_unchanged(model, batch, rec):
    with torch.no_grad():
        plain = model(*batch)
    assert torch.equal(plain.image, rec.output)
    assert all(not layer._forward_hooks for layer in model.self_attention_layers().values())  # hooks removed


def test_single_query_self_attention_equals_a_row_of_the_full_softmax(model, rec):
    y, x, sample = 37, 21, 1
    maps = viz.self_attention_maps(model, rec, y, x, sample)
    for name, layer in model.self_attention_layers().items():
        tokens = rec.self_attention_inputs[name][sample : sample + 1]  # (1, hw, inner)
        h, w = rec.layer_size(name)
        with torch.no_grad():
            q, k = layer.split_heads(layer.to_q(tokens)), layer.split_heads(layer.to_k(tokens))
            full = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(dim=-1)  # (1, heads, hw, hw)
        row = (y * h // 64) * w + x * w // 64
        assert maps[name].shape == (layer.heads, h, w)
        torch.testing.assert_close(maps[name].flatten(1), full[0, :, row], atol=1e-6, rtol=1e-5)


def test_single_query_on_a_tiny_map_and_the_captured_input_is_the_normed_one(model, batch, rec):
    from ca2sis_lib.models.attention import SelfAttention

    torch.manual_seed(3)
    layer = SelfAttention(inner=8, heads=2)
    tokens = torch.randn(1, 9, 8)  # a 3×3 map
    with torch.no_grad():
        q, k = layer.split_heads(layer.to_q(tokens)), layer.split_heads(layer.to_k(tokens))
        full = (q @ k.transpose(-1, -2) / math.sqrt(4)).softmax(dim=-1)
    for index in range(9):
        torch.testing.assert_close(layer.map_for_query(tokens, index), full[:, :, index])
    # the hook saw norm1's output: feeding it back through attn1 gives what attn1 returned in the pass
    block = model.generator.stages[0].transformer.block
    seen = {}
    handle = block.attn1.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    try:
        viz.record_attention(model, *batch)
    finally:
        handle.remove()
    with torch.no_grad():
        torch.testing.assert_close(block.attn1(rec.self_attention_inputs["cross@16"]), seen["out"])


# -- metrics ---------------------------------------------------------------------------------------
def test_auroc_known_answers():
    assert viz.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert viz.auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert viz.auroc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert viz.auroc([5, 5, 5, 5], [0, 1, 0, 1]) == 0.5  # all tied: chance
    assert viz.auroc([1, 1, 2], [0, 1, 1]) == pytest.approx(0.75)  # a tie counts one half
    assert math.isnan(viz.auroc([1, 2, 3], [1, 1, 1]))
    rng = np.random.default_rng(0)  # against the definition: P(score+ > score-) + ½ P(tie)
    scores, target = rng.integers(0, 5, 200), rng.random(200) < 0.3
    pos, neg = scores[target][:, None], scores[~target][None, :]
    brute = ((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size)
    assert viz.auroc(scores, target) == pytest.approx(brute)
    assert viz.average_ranks(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_average_precision_known_answers():
    assert viz.average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert viz.average_precision([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert viz.average_precision([5, 5, 5, 5], [0, 1, 0, 1]) == 0.5  # all tied: the positives' share
    assert math.isnan(viz.average_precision([1, 2, 3], [0, 0, 0]))
    rng = np.random.default_rng(0)  # against the definition: Σ over thresholds of Δrecall × precision
    scores, target = rng.integers(0, 6, 300), rng.random(300) < 0.2
    brute, recall_before = 0.0, 0.0
    for threshold in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= threshold
        recall = (chosen & target).sum() / target.sum()
        brute += (recall - recall_before) * (chosen & target).sum() / chosen.sum()
        recall_before = recall
    assert viz.average_precision(scores, target) == pytest.approx(brute)


def test_average_precision_separates_what_auroc_cannot():
    """A rare class with a few strong false positives: AUROC stays near 1, AP shows the false positives
    (notebook 04's heat maps: every AUROC of the shipped model rounds to 1.00)."""
    target = np.zeros(4000, bool)
    target[:20] = True  # 20 pixels of an eye among 4000
    scores = np.where(target, 5.0, 0.0)
    scores[20:40] = 6.0  # 20 other pixels above every one of the eye's
    assert viz.auroc(scores, target) > 0.99 and viz.average_precision(scores, target) < 0.6


def test_iou_known_answers():
    a = np.array([[1, 1, 0], [0, 0, 0]], dtype=bool)
    b = np.array([[0, 1, 1], [0, 0, 0]], dtype=bool)
    assert viz.iou(a, b) == pytest.approx(1 / 3)
    assert viz.iou(a, a) == 1.0
    assert viz.iou(a, ~a) == 0.0
    assert math.isnan(viz.iou(np.zeros(4, bool), np.zeros(4, bool)))


def _fake_recording(rec, logits_from_mask: bool) -> viz.AttentionRecording:
    logits = {}
    for name in rec.layer_names:
        target = rec.target(name)  # (B, K, h, w)
        values = 8 * target - 4 if logits_from_mask else torch.randn_like(target)
        logits[name] = values[:, None].repeat(1, 2, 1, 1, 1)  # two identical heads
    return viz.AttentionRecording(image=rec.image, one_hot=rec.one_hot, output=rec.output, logits=logits,
                                  self_attention_inputs={}, attn_loss=None)


def test_agreement_is_perfect_for_maps_equal_to_the_mask(rec):
    table = viz.agreement_table(_fake_recording(rec, logits_from_mask=True))
    present = table[table["pixels"] > 0]
    assert len(present) == 3 * 12 and np.allclose(present["iou"], 1) and np.allclose(present["auroc"], 1)
    assert np.allclose(present["ap"], 1)
    summary = viz.agreement_summary(table)
    assert summary["layer"].tolist() == rec.layer_names and summary["resolution"].tolist() == [16, 32, 64]
    noisy = viz.agreement_table(_fake_recording(rec, logits_from_mask=False))
    assert noisy["iou"].between(0, 1).all() and noisy["auroc"].between(0, 1).all()
    assert abs(noisy["auroc"].mean() - 0.5) < 0.1


def test_agreement_table_of_the_real_recording(rec):
    table = viz.agreement_table(rec)
    assert set(table.columns) >= {"layer", "resolution", "class", "pixels", "iou", "auroc", "ap"}
    assert len(table) == 3 * 12
    assert table["iou"].dropna().between(0, 1).all() and table["auroc"].dropna().between(0, 1).all()
    assert table.loc[table["pixels"] > 0, "ap"].between(0, 1).all()


# -- figures ---------------------------------------------------------------------------------------
def test_every_figure_draws_and_saves(model, rec, tmp_path):
    from ca2sis_lib.models.spade import SPADEConfig, SPADEGenerator, modulation_maps

    table = viz.agreement_table(rec)
    spade = SPADEGenerator(SPADEConfig.tiny()).eval()
    modulation = modulation_maps(spade, None, rec.labels)
    figures = [
        viz.plot_layer_class_grid(rec, sample=1, classes=[0, 3, 8]),
        viz.plot_layer_class_grid(rec, kind="logits", head=0, show_target=False),
        viz.plot_heads(rec, "cross@32", cls=3),
        viz.plot_overlay(rec, "cross@16", cls=1, head=2),
        viz.plot_pixel_distribution(rec, 30, 12),
        viz.plot_self_attention(viz.self_attention_maps(model, rec, 30, 12), rec, 30, 12),
        viz.plot_agreement(table, "iou"),
        viz.plot_agreement(table, "auroc"),
        viz.plot_agreement(table, "ap"),
        viz.plot_agreement_by_resolution(table),
        viz.plot_modulation(modulation, "decoder.up_1.norm_0", rec.labels[0], rec.palette),
        viz.plot_attention_vs_modulation(rec, "cross@32", 3, modulation, viz.layer_at_resolution(modulation, 32)),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert modulation["decoder.up_1.norm_0"].gamma.shape == (2, 16, 16)
    assert viz.layer_at_resolution(modulation, 32) == "decoder.up_2.norm_0"
    png = viz.save_figure(figures[0], tmp_path / "slides" / "grid.png", dpi=50)
    svg = viz.save_figure(figures[2], tmp_path / "heads.svg")
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert "<svg" in svg.read_text()[:1000]
    with pytest.raises(ValueError, match=".png, .svg or .pdf"):
        viz.save_figure(figures[0], tmp_path / "grid.jpg")


def drawn_pictures(fig: Figure) -> list[np.ndarray]:
    """What every panel of a figure shows: the array behind its image, row by row."""
    return [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]


def test_every_mask_drawn_in_a_grid_has_the_palette_colours(batch):
    """A mask row shows class k in palette[k] exactly (notebook 05's composed-mask row once squeezed
    0–255 colours with * 2 - 1: neck, eyes and brows turned white, nose, ears and mouth one yellow)."""
    from ca2sis_lib.data.toy import TOY_PALETTE

    image, labels = batch
    palette = np.asarray(TOY_PALETTE)
    fig = viz.plot_image_rows({"mask": labels, "image": image, "mask again": labels.flip(-1)}, "t", palette=palette)
    drawn = drawn_pictures(fig)
    assert len(drawn) == 3 * len(labels)
    for got, expected in zip(drawn[:2] + drawn[4:], [*labels, *labels.flip(-1)]):
        assert got.dtype == np.uint8 and np.array_equal(got, palette[expected.numpy()])
        assert len(np.unique(got.reshape(-1, 3), axis=0)) == len(expected.unique())  # no two classes merge
    assert np.allclose(drawn[2], viz.to_rgb(image[0]))  # images are drawn from [-1, 1], not as masks
    with pytest.raises(ValueError, match="palette"):
        viz.plot_image_rows({"mask": labels})
    with pytest.raises(ValueError, match="integer class ids"):
        viz.plot_image_rows({"mask": labels.float()}, palette=palette)


def test_training_log_and_progress_figures(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    rows = "step,g_l1,g_attn,g_total,g_gan,d_hinge\n10,3,2,5,0.1,1.9\n20,2,1,3,0.2,1.5\n20,2.5,1,3.5,0.2,1.4\n"
    (run / "log.csv").write_text(rows)  # step 20 twice: a crash between two checkpoints
    log = viz.read_training_log(run / "log.csv")
    assert log["step"].tolist() == [10, 20] and log["g_l1"].tolist() == [3, 2.5]  # the last row of a step wins
    viz.save_figure(viz.new_figure(2, 2)[0], run / "samples" / "step_0000020.png", dpi=20)
    fig = viz.plot_training_progress(run, total_steps=40)
    assert fig._suptitle.get_text() == "run: step 20 of 40" and len(drawn_pictures(fig)) == 1
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["g_l1", "g_attn", "g_total"]  # generator terms; g_gan goes with d_hinge


def test_class_centre_is_a_pixel_of_the_class():
    from ca2sis_lib.masks import class_centre

    ring = torch.zeros(9, 9, dtype=torch.long)
    ring[1:8, 1:8] = 1
    ring[3:6, 3:6] = 0  # a ring: its centroid (4, 4) is not a pixel of it
    y, x = class_centre(ring, 1)
    assert ring[y, x] == 1 and abs(y - 4) + abs(x - 4) == 2
    assert class_centre(ring, 2) is None


# -- inspector -------------------------------------------------------------------------------------
@pytest.fixture()
def samples(batch):
    image, labels = batch
    return [{"image": image[i], "label": labels[i], "name": f"rect {i}"} for i in range(2)]


def test_panels_draw_every_picture_kind_maps_with_a_scale_and_a_class_legend():
    image = torch.rand(3, 8, 8) * 2 - 1  # model format, in [-1, 1]
    columns = {"tensor": [image, image], "array": [np.full((8, 8, 3), 1.5), viz.colour_labels(torch.ones(8, 8,
               dtype=torch.long), [(0, 0, 0), (255, 0, 0)])], "map": [torch.zeros(8, 8), np.eye(8)]}
    fig = viz.image_grid(columns, row_labels=["first", "second"])
    axes = fig.axes
    assert len(axes) == 6 and [ax.get_title() for ax in axes[:3]] == ["tensor", "array", "map"]
    drawn = {ax.get_title() or f"{i}": ax.images[0].get_array() for i, ax in enumerate(axes)}
    assert np.allclose(drawn["tensor"], viz.to_rgb(image)) and drawn["array"].max() == 1.0  # floats clipped to [0, 1]
    assert drawn["map"].ndim == 2 and axes[2].images[0].get_cmap().name == "gray"
    assert axes[0].get_ylabel() == "first" and len(viz.image_grid([[image]] * 2, rows=1).axes) == 2
    fig, axes = viz.new_figure(1, 2)
    a = viz.draw_map(axes[0, 0], torch.rand(4, 4), "weights", vmin=0, vmax=1)
    viz.draw_map(axes[0, 1], np.zeros((4, 4)), "zeros", vmin=0, vmax=1)
    assert a.colorbar is not None and a.get_clim() == (0, 1) and len(fig.axes) == 4  # two panels, two colour bars
    viz.class_legend(fig, ["bg", "skin", "hair"], [(0, 0, 0), (255, 0, 0), (0, 0, 255)], [0, 2])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["bg", "hair"]


def test_inspector_controls_update_state_and_drawing_without_forward_passes(model, samples):
    inspector = AttentionInspector(model, samples, dpi=40)
    s = inspector.state
    assert s.forwards == 1 and (s.sample, s.layer, s.head, s.y, s.x) == (0, "cross@16", None, 32, 32)
    view, png = inspector.redraw(), inspector.png
    assert png.startswith(PNG_SIGNATURE) and view.attention.shape == (16, 16)

    steps = [dict(layer="cross@32"), dict(cls=3), dict(head=2), dict(y=5, x=50), dict(layer="cross@64")]
    for change in steps:
        before_view, before_png = inspector.last_view, inspector.png
        view = inspector.set(**change)
        for key, value in change.items():
            assert getattr(inspector.state, key) == value
        assert inspector.png != before_png, f"{change} did not change the drawing"
        changed = not np.array_equal(view.attention, before_view.attention) or any(
            not np.array_equal(view.distribution[k], before_view.distribution[k]) for k in view.distribution)
        assert changed, f"{change} did not change the arrays drawn"
        assert inspector.state.forwards == 1, f"{change} ran a forward pass"
    assert view.attention.shape == (64, 64)
    assert inspector.state.head == 0 or inspector.state.head is None  # head 2 does not exist at cross@64
    assert view.self_attention_layer == "cross@32"  # cross@64 has none: the finest that has it

    before = inspector.last_view
    inspector.set(y=40, x=8)  # a new pixel moves the self-attention row and the class distribution
    assert not np.array_equal(inspector.last_view.self_attention, before.self_attention)
    assert inspector.state.forwards == 1

    inspector.set(sample=1)
    assert inspector.state.forwards == 2  # a new sample is the only thing that runs the model
    inspector.set(sample=0)
    assert inspector.state.forwards == 2  # cached
    before = (inspector.state.layer, inspector.state.head, inspector.state.y)
    with pytest.raises(ValueError, match="heads"):
        inspector.set(layer="cross@64", head=3)
    with pytest.raises(ValueError, match="outside"):
        inspector.set(layer="cross@16", y=64)
    assert (inspector.state.layer, inspector.state.head, inspector.state.y) == before  # nothing half-applied


def test_inspector_app_widgets_drive_the_inspector(model, samples, tmp_path):
    app = InspectorApp(AttentionInspector(model, samples, dpi=40), export_path=tmp_path / "view.png")
    state, image = app.inspector.state, app.image
    first = bytes(image.value)
    assert first.startswith(PNG_SIGNATURE)

    app.controls["head"].value = 3
    app.controls["layer"].value = "cross@64"  # 2 heads: head 3 falls back to the mean, options follow
    assert state.layer == "cross@64" and state.head is None
    assert app.controls["head"].value == -1 and len(app.controls["head"].options) == 3
    second = bytes(image.value)
    assert second != first
    app.controls["cls"].value = 8
    app.controls["y"].value = 10
    assert (state.cls, state.y) == (8, 10) and bytes(image.value) != second
    assert state.forwards == 1
    app.centre_button.click()
    assert int(app.inspector.recording.labels[0, state.y, state.x]) == 8 and app.controls["y"].value == state.y

    app.controls["sample"].value = 1
    assert state.forwards == 2 and state.sample == 1

    app.export_button.click()
    assert (tmp_path / "view.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "saved" in app.status.value
    assert app.export("view.svg").read_text().lstrip().startswith("<?xml")


def test_one_picture_conversion_serves_both_grids(batch):
    """image_grid (by columns) and plot_image_rows (by rows) draw through one as_picture: the same arrays."""
    from ca2sis_lib.data.toy import TOY_PALETTE

    image, labels = batch
    by_rows = drawn_pictures(viz.plot_image_rows({"mask": labels[:1], "image": image[:1]}, palette=TOY_PALETTE))
    by_columns = drawn_pictures(viz.image_grid([[viz.as_picture(labels[0], TOY_PALETTE)], [image[0]]]))
    assert all(np.array_equal(a, b) for a, b in zip(by_rows, by_columns))
    assert np.array_equal(viz.as_picture(labels[0].numpy(), TOY_PALETTE), viz.colour_labels(labels[0], TOY_PALETTE))
    with pytest.raises(ValueError, match="integer class ids"):
        viz.as_picture(labels[0].numpy().astype(float), TOY_PALETTE)
    assert not hasattr(viz, "picture")  # the old second conversion is gone
