"""Edit ground-truth metrics: known answers first, then the real toy renderer and models."""

import math

import pytest
import torch

from ca2sis_lib.data.toy_edits import transfer_class_style
from ca2sis_lib.data.toy_scene import CLASS_ID
from ca2sis_lib.edit_scores import (
    NOISE_LEVELS,
    add_blobs,
    corrupt,
    flip_labels,
    jitter_boundaries,
    light_consistency_scores,
    masked_mean_abs,
    masked_rmse,
    per_sample_iou,
    render_batch,
    robustness_curve,
    shape_transfer_scores,
    style_transfer_scores,
    toy_pairs,
)
from ca2sis_lib.models.ca2sis import CA2SIS
from ca2sis_lib.models.config import CA2SISConfig

HAIR = CLASS_ID["hair"]


@pytest.fixture(scope="module")
def pairs():
    return toy_pairs(12)


def test_masked_errors_known_answers():
    a = torch.zeros(2, 3, 4, 4)
    b = a + 0.2  # 0.1 in [0, 1] units
    region = torch.zeros(2, 4, 4, dtype=torch.bool)
    region[0, :2] = True
    rmse = masked_rmse(a, b, region)
    assert rmse[0].item() == pytest.approx(0.1, abs=1e-6) and math.isnan(rmse[1].item())  # empty region: NaN
    b[0, :, 2:] = 5.0  # outside the region: ignored
    assert masked_rmse(a, b, region)[0].item() == pytest.approx(0.1, abs=1e-6)
    assert masked_mean_abs(a, a, region)[0].item() == 0.0


def test_ideal_render_of_the_pair_is_the_dataset_image(pairs):
    again = render_batch(pairs.scenes_a, pairs.size)
    assert torch.allclose(again, pairs.images_a, atol=1e-5)


def test_per_sample_iou_known_answers():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[:, :, 2:] = 1  # half class 0, half class 1
    pred = target.clone()
    pred[1, :, 1] = 1  # sample 1: one column of class 0 predicted as 1
    ious = per_sample_iou(pred, target, 3)
    assert ious.shape == (2, 3) and torch.isnan(ious[:, 2]).all()  # class 2 in neither map: NaN, not 1
    assert ious[0, :2].tolist() == [1.0, 1.0]
    assert ious[1, 0].item() == pytest.approx(4 / 8) and ious[1, 1].item() == pytest.approx(8 / 12)
    # pooled over one sample it is segmentation_scores' per-class IoU
    from ca2sis_lib.image_metrics import segmentation_scores

    pooled = segmentation_scores(pred[1:], target[1:], 3)["iou_per_class"]
    assert [pooled[c] for c in (0, 1)] == pytest.approx(ious[1, :2].tolist())
    with pytest.raises(ValueError, match="differ in shape"):
        per_sample_iou(pred, target[:1], 3)


def test_the_ideal_style_edit_changes_only_the_class_and_its_rim(pairs):
    p = pairs.with_class(HAIR)
    ideal = render_batch([(lay, transfer_class_style(sa, sb, [HAIR])) for (lay, sa), (_, sb)
                          in zip(p.scenes_a, p.scenes_b)], p.size)
    changed = (ideal - p.images_a).abs().amax(1) > 1e-5
    rim = torch.nn.functional.max_pool2d((p.labels_a == HAIR).float()[:, None], 3, 1, 1)[:, 0] > 0
    assert changed.any() and not (changed & ~rim).any()


def test_corruptions_known_answers():
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(4, 64, 64, dtype=torch.long)
    labels[:, :, 32:] = 1
    flipped = flip_labels(labels, 0.3, 12, g)
    assert abs((flipped != labels).float().mean().item() - 0.3 * 11 / 12) < 0.02  # a flip may draw the same class
    assert torch.equal(jitter_boundaries(labels, 0, g), labels)
    jittered = jitter_boundaries(labels, 2, g)
    changed_cols = (jittered != labels).any(0).any(0).nonzero().flatten()
    assert changed_cols.min() >= 30 and changed_cols.max() <= 33  # only within 2 px of the boundary
    assert torch.equal(corrupt(labels, "spurious_blobs", 0, 12), labels)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(labels, "rain", 1, 12)


def test_blob_count_and_size():
    g = torch.Generator().manual_seed(1)
    base = torch.full((1, 64, 64), 11, dtype=torch.long)
    out = add_blobs(base, 1, 11, g, radius=(3, 3))  # classes 0..10 are all different from 11
    changed = (out != 11)[0].nonzero()
    assert 0 < len(changed) <= 29  # one disc of radius 3 has 29 pixels (fewer if clipped by a border)
    centre = changed.float().mean(0)
    assert ((changed.float() - centre) ** 2).sum(1).max() <= 9 + 1e-6 or len(changed) < 29  # one round disc
    assert len(out[0][out[0] != 11].unique()) == 1  # of one class


@pytest.fixture(scope="module")
def shipped():
    from ca2sis_lib.loading import load_model
    from ca2sis_lib.segmenter import load_segmenter

    return load_model("ca2sis_tiny_toy"), load_model("sean_tiny_toy"), load_segmenter()


def test_style_transfer_scores_on_the_shipped_models(shipped, pairs):
    ca2sis, sean, _ = shipped
    for model in (ca2sis, sean):
        s = style_transfer_scores(model, pairs, HAIR)
        assert s["pairs"] > 0 and 0 <= s["leakage"] < 0.2
        assert s["error_in_class"] < s["unedited_error_in_class"]  # the edit moves towards the ideal


def test_per_pair_scores_agree_with_the_means(shipped, pairs):
    ca2sis, sean, segmenter = shipped
    for model in (ca2sis, sean):  # same pairs, same order for every model: differences can be paired
        s = style_transfer_scores(model, pairs, HAIR, per_pair=True)
        assert len(s["per_pair"]["leakage"]) == s["pairs"] == len(pairs.with_class(HAIR).images_a)
        assert sum(s["per_pair"]["leakage"]) / s["pairs"] == pytest.approx(s["leakage"], rel=1e-5)
        shown = pairs.has_class(HAIR).nonzero().flatten().tolist()
        assert s["per_pair"]["pair"] == shown  # each edit names its pair: a bootstrap resamples pairs, not edits
    light = light_consistency_scores(ca2sis, pairs, HAIR, min_light_gap=0.0, per_pair=True)
    assert sum(light["per_pair"]["lit_like_a"]) / light["pairs"] == pytest.approx(light["fraction_lit_like_a"])
    assert light["per_pair"]["pair"] == shown  # no light gap asked for: every pair showing the class counts
    gapped = light_consistency_scores(ca2sis, pairs, HAIR, min_light_gap=0.05, per_pair=True)["per_pair"]
    assert len(gapped["pair"]) == len(gapped["lit_like_a"]) and set(gapped["pair"]) <= set(shown)
    shape = shape_transfer_scores(ca2sis, segmenter, pairs, HAIR, "tokens", per_pair=True)
    each = shape["per_pair"]
    assert len(each["miou"]) == len(each["ceiling_class_iou"]) == shape["pairs"]
    assert all(0.0 <= v <= 1.0 for v in each["miou"] + each["ceiling_miou"]) and each["pair"] == shown
    rows = robustness_curve(ca2sis, segmenter, pairs.images_a, pairs.labels_a, {"label_flips": (0.0,)},
                            per_pair=True)
    assert sum(rows[0]["psnr_per_sample"]) / len(pairs.images_a) == pytest.approx(rows[0]["psnr"], rel=1e-5)
    assert len(rows[0]["miou_per_sample"]) == len(pairs.images_a)
    assert all(0.0 <= v <= 1.0 for v in rows[0]["miou_per_sample"])


def test_a_shared_cache_gives_the_same_scores(shipped, pairs):
    ca2sis, _, segmenter = shipped
    cache: dict = {}
    for cls in (HAIR, CLASS_ID["skin"]):
        plain = style_transfer_scores(ca2sis, pairs, cls)
        cached = style_transfer_scores(ca2sis, pairs, cls, cache=cache)
        assert plain == pytest.approx(cached, rel=1e-4, abs=1e-6)
        light = light_consistency_scores(ca2sis, pairs, cls, min_light_gap=0.0)
        assert light == pytest.approx(light_consistency_scores(ca2sis, pairs, cls, min_light_gap=0.0, cache=cache),
                                      rel=1e-4, abs=1e-6)
    assert set(cache) == {"reconstruction", f"style edit {HAIR}", f"style edit {CLASS_ID['skin']}"}
    kinds = {"label_flips": (0.0, 0.15), "boundary_jitter": (0, 2)}
    plain = robustness_curve(ca2sis, segmenter, pairs.images_a, pairs.labels_a, kinds)
    reused = robustness_curve(ca2sis, segmenter, pairs.images_a, pairs.labels_a, kinds, clean=cache["reconstruction"])
    for a, b in zip(plain, reused, strict=True):
        assert a["kind"] == b["kind"] and a["level"] == b["level"]
        assert (a["psnr"], a["miou"]) == pytest.approx((b["psnr"], b["miou"]), rel=1e-4)


def test_light_consistency_and_shape_scores(shipped, pairs):
    ca2sis, sean, segmenter = shipped
    light = light_consistency_scores(ca2sis, pairs, HAIR, min_light_gap=0.0)
    assert 0.0 <= light["fraction_lit_like_a"] <= 1.0 and light["pairs"] > 0
    for model, method in ((ca2sis, "tokens"), (ca2sis, "mask"), (sean, "mask")):
        shape = shape_transfer_scores(model, segmenter, pairs, HAIR, method)
        assert 0.0 <= shape["miou"] <= 1.0 and shape["psnr"] > 10
    with pytest.raises(ValueError, match="only CA²-SIS"):
        shape_transfer_scores(sean, segmenter, pairs, HAIR, "tokens")


def test_robustness_curve_degrades_with_noise(shipped, pairs):
    ca2sis, _, segmenter = shipped
    rows = robustness_curve(ca2sis, segmenter, pairs.images_a, pairs.labels_a,
                            {"label_flips": NOISE_LEVELS["label_flips"]})
    assert [r["level"] for r in rows] == list(NOISE_LEVELS["label_flips"])
    assert rows[0]["changed_pixels"] == 0.0 and rows[-1]["changed_pixels"] > 0.2
    assert rows[-1]["miou"] < rows[0]["miou"] and rows[-1]["psnr"] < rows[0]["psnr"]


def test_an_untrained_model_transfers_nothing_useful(pairs):
    torch.manual_seed(0)
    model = CA2SIS(CA2SISConfig.tiny()).eval()
    s = style_transfer_scores(model, pairs, HAIR)
    assert s["error_in_class"] > 0.1  # far from the ideal: the metric can fail


# -- known answers through an oracle: the "model's" edit is replaced by the exact answer ----------
@pytest.fixture()
def oracle(monkeypatch, pairs):
    """Patch the editing calls inside edit_scores so that every edit returns the renderer's ideal."""
    import ca2sis_lib.edit_scores as em

    def ideal_style(model, a, la, b, lb, classes):
        p = pairs.with_class(classes[0])
        return render_batch([(lay, transfer_class_style(sa, sb, classes)) for (lay, sa), (_, sb)
                             in zip(p.scenes_a, p.scenes_b)], p.size)

    def ideal_shape(model, a, la, lb, classes):
        from ca2sis_lib.data.toy_edits import transfer_part_shape

        p = pairs.with_class(classes[0])
        return render_batch([(transfer_part_shape(la_, lb_, classes, align=False), sa) for (la_, sa), (lb_, _)
                             in zip(p.scenes_a, p.scenes_b)], p.size)

    monkeypatch.setattr(em, "transfer_style", ideal_style)
    monkeypatch.setattr(em, "reconstruct", lambda model, a, la: a.cpu())
    monkeypatch.setattr(em, "transfer_shape_with_mask", ideal_shape)
    return torch.nn.Linear(1, 1)  # any module: only its device is read


def test_a_perfect_style_edit_scores_zero_error_and_no_leakage(oracle, pairs):
    s = style_transfer_scores(oracle, pairs, HAIR)
    assert s["error_in_class"] == pytest.approx(0.0, abs=1e-6)
    assert s["error_outside_class"] < 0.01 and s["leakage"] < 0.01  # only the one-pixel antialiased rim moves
    light = light_consistency_scores(oracle, pairs, HAIR, min_light_gap=0.0)
    assert light["error_to_a_light"] == pytest.approx(0.0, abs=1e-6) and light["fraction_lit_like_a"] >= 0.9


def test_a_perfect_shape_edit_scores_the_parsers_own_accuracy(oracle, pairs):
    from ca2sis_lib.segmenter import load_segmenter

    s = shape_transfer_scores(oracle, load_segmenter(), pairs, HAIR, method="mask")
    assert s["miou"] > 0.8 and s["class_iou"] > 0.8 and s["psnr"] > 60  # identical images: PSNR of eps
