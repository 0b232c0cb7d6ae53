"""The data layer: toy faces (determinism, exact labels, edit ground truths), folder datasets,
the checker, and CelebAMask-HQ preparation on a generated miniature of the raw release."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ca2sis_lib.data import preflight
from ca2sis_lib.data.celebamask import (
    CELEBAMASK_CLASSES,
    CELEBAMASK_PALETTE,
    CelebAMaskHQ,
    make_raw_miniature,
    mask_path,
    prepare_celebamask,
)
from ca2sis_lib.data.celebamask import main as celebamask_main
from ca2sis_lib.data.common import save_pair, stack_items
from ca2sis_lib.data.folder import PairTransform, SegmentationFolder, resize_label
from ca2sis_lib.data.preflight import DataError, check_split, read_image, read_label
from ca2sis_lib.data.toy import (
    SPLIT_CODES,
    TOY_CLASSES,
    TOY_LR_PAIRS,
    TOY_PALETTE,
    ClassStyle,
    Frame,
    Light,
    Part,
    ToyFaces,
    ToyLayout,
    ToyStyle,
    interpolate_layouts,
    interpolate_styles,
    label_map,
    light_field,
    render,
    render_sample,
    sample_scene,
    texture_albedo,
    toy_batch,
    transfer_class_style,
    transfer_light,
    transfer_part_shape,
    write_toy_split,
)
from ca2sis_lib.data.toy import main as toy_main
from ca2sis_lib.data.toy_render import part_index_map, pixel_centers
from ca2sis_lib.masks import IGNORE_COLOUR, classes_present, colour_labels, labels_to_one_hot
from ca2sis_lib.models.config import CA2SISConfig


def dilate(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """3x3 binary dilation, ``steps`` times (independent of the renderer's own helper)."""
    out = mask.copy()
    for _ in range(steps):
        padded = np.pad(out, 1)
        out = np.zeros_like(out)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                out |= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
    return out


def flat_style(colors: dict[int, tuple[float, float, float]], light: Light | None = None) -> ToyStyle:
    classes = tuple(ClassStyle(color=colors.get(k, (0.0, 0.0, 0.0)), accent=(0.0, 0.0, 0.0)) for k in range(12))
    return ToyStyle(classes=classes, light=light or Light(direction=0.0, strength=0.0, cast=(1.0, 1.0, 1.0)))


# ---------------------------------------------------------------------------------------------
# Toy faces: the world
# ---------------------------------------------------------------------------------------------
def test_toy_classes_match_the_tiny_model():
    assert TOY_CLASSES == ("background", "skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "hair",
                           "ears", "neck", "cloth")
    assert len(TOY_PALETTE) == 12 and len(set(TOY_PALETTE)) == 12
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in TOY_PALETTE)
    assert CA2SISConfig.tiny().num_classes == len(TOY_CLASSES)
    assert [TOY_CLASSES[a][2:] for a, _ in TOY_LR_PAIRS] == [TOY_CLASSES[b][2:] for _, b in TOY_LR_PAIRS]


def test_same_seed_gives_identical_bytes_whatever_the_thread_count():
    a = ToyFaces(8, size=64, seed=3)
    threads = torch.get_num_threads()
    try:
        first = [a[i] for i in (0, 5)]
        torch.set_num_threads(1)
        again = [ToyFaces(8, size=64, seed=3)[i] for i in (0, 5)]  # fresh object, other thread count
    finally:
        torch.set_num_threads(threads)
    for x, y in zip(first, again):
        assert x["image"].numpy().tobytes() == y["image"].numpy().tobytes()
        assert x["label"].numpy().tobytes() == y["label"].numpy().tobytes()
        assert x["name"] == y["name"]
    assert a[5]["name"] == "000005"
    assert not torch.equal(a[0]["image"], a[1]["image"])  # samples differ
    assert not torch.equal(a[0]["image"], ToyFaces(8, seed=4)[0]["image"])  # seeds differ


def test_train_and_test_never_share_a_scene():
    assert SPLIT_CODES["train"] != SPLIT_CODES["test"]
    digest = lambda layout, style: hashlib.sha1(json.dumps([layout.to_dict(), style.to_dict()]).encode()).hexdigest()
    train = {digest(*sample_scene(i, seed=0, split="train")) for i in range(40)}
    test = {digest(*sample_scene(i, seed=0, split="test")) for i in range(40)}
    assert len(train) == 40 and len(test) == 40 and not train & test
    # a test sample is not a train sample of another seed either (the split is part of every seed)
    assert digest(*sample_scene(0, seed=1, split="train")) not in test


def test_generator_is_frozen():
    """Label maps are a published function of (seed, split, index): changing the generator breaks datasets
    written by earlier versions. If the change is intended, update these checksums (and say so)."""
    digest = hashlib.sha1(b"".join(label_map(sample_scene(i)[0], 64).astype(np.uint8).tobytes() for i in range(3)))
    assert digest.hexdigest()[:16] == FROZEN_LABELS_SHA1


FROZEN_LABELS_SHA1 = "2681c8702da401c7"


def test_layout_and_style_round_trip_through_json():
    layout, style = sample_scene(7, seed=2, split="test", correlation=0.5)
    layout2 = ToyLayout.from_dict(json.loads(json.dumps(layout.to_dict())))
    style2 = ToyStyle.from_dict(json.loads(json.dumps(style.to_dict())))
    assert layout2 == layout and style2 == style
    assert np.array_equal(render(layout2, style2, 64), render(layout, style, 64))


def test_layouts_vary_and_optional_parts_are_sometimes_absent():
    layouts = [sample_scene(i)[0] for i in range(60)]
    names = [{p.name for p in layout.parts} for layout in layouts]
    for optional in ("l_ear", "fringe", "hair_back", "hair_bun"):
        assert 0 < sum(optional in n for n in names) < len(names), optional
    assert len({round(layout.frame.cx, 6) for layout in layouts}) == 60
    assert min(layout.frame.tilt for layout in layouts) < -0.1 < 0.1 < max(layout.frame.tilt for layout in layouts)
    areas = np.stack([np.bincount(label_map(layout, 64).ravel(), minlength=12) for layout in layouts[:20]])
    assert areas[:, 3].mean() < 40 < 400 < areas[:, 1].mean()  # small eyes and a large face


# ---------------------------------------------------------------------------------------------
# Toy faces: rendering
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [64, 128])
def test_pixels_away_from_edges_show_their_class_style_under_the_light(size):
    xs = pixel_centers(size)
    for index in range(6):
        layout, style = sample_scene(index, seed=1)
        image, labels = render_sample(layout, style, size)
        assert image.shape == (size, size, 3) and image.dtype == np.float32 and labels.dtype == np.int64
        assert np.array_equal(labels, label_map(layout, size))
        albedo = image / light_field(style.light, size)
        for c in np.unique(labels):
            interior = ~dilate(labels != c, 2)  # two pixels away from any other class
            expected = texture_albedo(style.classes[c], xs[None, :], xs[:, None])
            assert np.allclose(albedo[interior], expected[interior], atol=1e-5), (index, TOY_CLASSES[c])


def test_edges_are_antialiased_and_labels_are_exact():
    layout = ToyLayout(Frame(0.5, 0.5, 1.0, 0.0), (Part("face", 1, (0.013, -0.021), (0.3, 0.3)),))
    style = flat_style({1: (1.0, 1.0, 1.0)})
    for size in (64, 256):
        image, labels = render_sample(layout, style, size)
        xs = pixel_centers(size)
        inside = (xs[None, :] - 0.513) ** 2 + (xs[:, None] - 0.479) ** 2 < 0.09
        assert np.array_equal(labels == 1, inside)  # exact: the pixel centre decides
        grey = image[..., 0]
        edge = (grey > 0.01) & (grey < 0.99)
        assert edge.sum() > 2 * math.pi * 0.3 * size  # a band of in-between pixels all round
        assert edge.sum() < 4 * 2 * math.pi * 0.3 * size
        assert abs(grey.mean() - math.pi * 0.09) < 2e-3  # coverage integrates to the disc's area


def test_any_size_draws_the_same_scene():
    layout, style = sample_scene(11)
    fractions = [np.bincount(label_map(layout, s).ravel(), minlength=12) / s**2 for s in (64, 128, 256)]
    assert np.abs(fractions[0] - fractions[2]).max() < 0.02 and np.abs(fractions[1] - fractions[2]).max() < 0.01
    small = render(layout, style, 64)
    big = render(layout, style, 256).reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
    assert np.median(np.abs(small - big)) < 0.02


# ---------------------------------------------------------------------------------------------
# Toy faces: edits and their ground truths
# ---------------------------------------------------------------------------------------------
def test_local_style_transfer_changes_only_that_class_and_its_rim():
    for index in range(4):
        layout, style_a = sample_scene(index)
        _, style_b = sample_scene(index + 100)
        image_a, labels = render_sample(layout, style_a, 64)
        for c in range(12):
            edited = render(layout, transfer_class_style(style_a, style_b, [c]), 64)
            changed = np.abs(edited - image_a).max(axis=-1) > 1e-6
            own = labels == c
            assert not (changed & ~dilate(own)).any(), (index, TOY_CLASSES[c])
            if own.sum() > 20 and style_a.classes[c] != style_b.classes[c]:
                assert changed[own].mean() > 0.5
    hair = transfer_class_style(style_a, style_b, ["hair"])
    assert hair.classes[8] == style_b.classes[8] and hair.classes[1] == style_a.classes[1]
    assert hair.light == style_a.light


def test_light_transfer_keeps_the_albedo():
    layout, style_a = sample_scene(3)
    _, style_b = sample_scene(4)
    relit = transfer_light(style_a, style_b)
    a = render(layout, style_a, 64) / light_field(style_a.light, 64)
    b = render(layout, relit, 64) / light_field(style_b.light, 64)
    assert np.allclose(a, b, atol=1e-5)
    assert not np.allclose(render(layout, relit, 64), render(layout, style_a, 64), atol=1e-3)


def test_shape_transfer_follows_the_painting_order():
    layout_a, style = sample_scene(1)
    layout_b, _ = sample_scene(2)
    labels_a = label_map(layout_a, 64)
    nose = transfer_part_shape(layout_a, layout_b, ["nose"])
    assert [p for p in nose.parts if p.cls == 2] == [p for p in layout_b.parts if p.cls == 2]
    assert [p for p in nose.parts if p.cls != 2] == [p for p in layout_a.parts if p.cls != 2]
    labels = label_map(nose, 64)
    changed = labels != labels_a
    assert changed.any() and np.isin(labels_a[changed], [1, 2]).all()  # only face and nose pixels trade places
    # Unaligned: B's nose at B's image position, under whatever A paints above noses (eyes, brows, mouth, fringe).
    moved = transfer_part_shape(layout_a, layout_b, ["nose"], align=False)
    alone = ToyLayout(layout_b.frame, tuple(p for p in layout_b.parts if p.cls == 2))
    depth = np.array([0.0] + [p.depth for p in layout_a.parts])[part_index_map(layout_a, 64) + 1]
    assert np.array_equal(label_map(moved, 64) == 2, (label_map(alone, 64) == 2) & (depth <= 6.0))
    # Hair from B: the back hair goes under A's face, so the face only loses pixels to B's fringe.
    hair = label_map(transfer_part_shape(layout_a, layout_b, ["hair"]), 64)
    fringe = ToyLayout(layout_a.frame, tuple(p for p in layout_b.parts if p.name == "fringe"))
    lost = (labels_a == 1) & (hair != 1)
    assert (label_map(fringe, 64)[lost] == 8).all()


def test_interpolation_ends_are_the_inputs():
    layout_a, style_a = sample_scene(5)
    layout_b, style_b = sample_scene(6)
    assert np.array_equal(label_map(interpolate_layouts(layout_a, layout_b, 0.0), 64), label_map(layout_a, 64))
    assert np.array_equal(label_map(interpolate_layouts(layout_a, layout_b, 1.0), 64), label_map(layout_b, 64))
    assert np.allclose(render(layout_a, interpolate_styles(style_a, style_b, 0.0), 64), render(layout_a, style_a, 64))
    assert np.allclose(render(layout_a, interpolate_styles(style_a, style_b, 1.0), 64), render(layout_a, style_b, 64),
                       atol=1e-6)
    half = interpolate_styles(style_a, style_b, 0.5, classes=["skin"])
    assert np.allclose(half.classes[1].color, (np.array(style_a.classes[1].color) + style_b.classes[1].color) / 2)
    assert half.classes[2] == style_a.classes[2] and half.light == style_a.light
    middle = label_map(interpolate_layouts(layout_a, layout_b, 0.5), 64)
    assert (middle == 1).sum() > 100


def test_correlation_ties_related_classes():
    _, style = sample_scene(0, correlation=1.0)
    brow, hair = style.classes[TOY_CLASSES.index("l_brow")], style.classes[TOY_CLASSES.index("hair")]
    assert np.allclose(brow.color, 0.7 * np.array(hair.color))
    assert style.classes[3] == style.classes[4]  # the right eye copies the left
    with pytest.raises(ValueError, match="correlation"):
        sample_scene(0, correlation=1.5)


def test_toy_dataset_item_format_and_errors():
    data = ToyFaces(3, size=64, split="test")
    item = data[-1]
    assert set(item) == {"image", "label", "name"} and item["name"] == "000002"
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["label"].shape == (64, 64) and item["label"].dtype == torch.int64
    assert -1 <= item["image"].min() and item["image"].max() <= 1
    assert (data.num_classes, data.class_names, data.palette, data.ignore_index) == (12, TOY_CLASSES, TOY_PALETTE, None)
    with pytest.raises(IndexError):
        data[3]
    with pytest.raises(ValueError, match="split"):
        ToyFaces(3, split="val")
    with pytest.raises(ValueError, match="unknown toy class"):
        transfer_class_style(*[sample_scene(0)[1]] * 2, ["beard"])


# ---------------------------------------------------------------------------------------------
# Splits on disk, the folder dataset and the checker
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "toy64"
    assert toy_main(["--out", str(out), "--size", "64", "--train", "6", "--test", "2", "--seed", "5"]) == 0
    return out


def test_written_split_round_trips_through_the_folder_dataset(toy_dir):
    for split, count in (("train", 6), ("test", 2)):
        assert len(list((toy_dir / split / "images").glob("*.png"))) == count
        assert len(list((toy_dir / split / "params").glob("*.json"))) == count
    disk = SegmentationFolder(toy_dir, "train")  # classes, palette, ignore label from dataset.json
    fly = ToyFaces(6, size=64, seed=5)
    assert (disk.num_classes, disk.class_names, disk.palette, disk.ignore_index) == (12, TOY_CLASSES, TOY_PALETTE, None)
    for i in range(len(disk)):
        a, b = disk[i], fly[i]
        assert a["name"] == b["name"]
        assert torch.equal(a["label"], b["label"])
        assert (a["image"] - b["image"]).abs().max() <= 1.01 / 255  # 8-bit rounding, in [-1, 1] units
    params = json.loads((toy_dir / "train" / "params" / "000004.json").read_text())
    assert ToyLayout.from_dict(params["layout"]) == fly.scene(4)[0]
    assert preflight.main([str(toy_dir)]) == 0


def _write_pair(split: Path, name: str, label: np.ndarray, image: np.ndarray | None = None) -> None:
    image = np.zeros(label.shape + (3,), np.uint8) if image is None else image
    save_pair(split, name, image, label)


@pytest.fixture
def broken_split(tmp_path) -> Path:
    split = tmp_path / "broken"
    good = np.zeros((16, 16), np.uint8)
    good[4:8, 4:8] = 2
    _write_pair(split, "good", good)
    _write_pair(split, "bad_value", np.full((16, 16), 7, np.uint8))  # K = 5
    _write_pair(split, "ignored", np.full((16, 16), 255, np.uint8))  # fine only with --ignore-index 255
    _write_pair(split, "small_label", good)
    Image.fromarray(np.zeros((20, 16, 3), np.uint8)).save(split / "images" / "small_label.png")  # 16x20 vs 16x16
    _write_pair(split, "rgb_mask", good)
    Image.fromarray(np.stack([good * 40, good, good], -1)).save(split / "labels" / "rgb_mask.png")
    _write_pair(split, "corrupt", good)
    (split / "labels" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    _write_pair(split, "no_label", good)
    (split / "labels" / "no_label.png").unlink()
    _write_pair(split, "no_image", good)
    (split / "images" / "no_image.png").unlink()
    _write_pair(split, "jpeg_label", good)
    (split / "labels" / "jpeg_label.png").rename(split / "labels" / "jpeg_label.jpg")
    return split


def test_checker_reports_every_problem(broken_split, capsys):
    report = check_split(broken_split, num_classes=5)
    text = "\n".join(report.problems)
    for expected in ("image has no label", "label has no image", "is 16x20 but its label", "cannot read",
                     "label values [7]", "label values [255]", "RGB colour image", "must be lossless PNG"):
        assert expected in text, expected
    assert len(report.problems) == 8 and not report.ok
    assert report.frequencies.sum() == pytest.approx(1.0)
    assert preflight.main([str(broken_split), "--num-classes", "5"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM" in out and "FAILED" in out
    with_ignore = check_split(broken_split, num_classes=5, ignore_index=255)
    assert len(with_ignore.problems) == 7 and with_ignore.ignored_pixels == 256


def test_datasets_raise_the_same_clear_errors(broken_split):
    with pytest.raises(DataError, match="image has no label"):
        SegmentationFolder(broken_split, num_classes=5)
    for name in ("no_label", "jpeg_label"):
        (broken_split / "images" / f"{name}.png").unlink()
    (broken_split / "labels" / "no_image.png").unlink()
    (broken_split / "labels" / "jpeg_label.jpg").unlink()
    data = SegmentationFolder(broken_split, num_classes=5)
    by_name = {stem: i for i, (stem, _, _) in enumerate(data.pairs)}
    for name, message in (("bad_value", r"bad_value\.png: label values \[7\].*never clipped"),
                          ("small_label", "nearest-neighbour"), ("rgb_mask", "class ids are expected"),
                          ("corrupt", "cannot read"), ("ignored", "no ignore label is set")):
        with pytest.raises(ValueError, match=message):
            data[by_name[name]]
    assert data[by_name["good"]]["label"].max() == 2


def test_ignore_label_survives_transforms_and_has_no_class():
    label = np.zeros((8, 8), np.int64)
    label[:, :4] = 3
    label[0, :] = 255
    image = np.zeros((8, 8, 3), np.uint8)
    _, flipped = PairTransform(flip_p=1.0, lr_pairs=TOY_LR_PAIRS)(image, label)
    assert (flipped[0] == 255).all() and (flipped[1:, 4:] == 4).all() and (flipped[1:, :4] == 0).all()
    _, resized = PairTransform(resize=13)(image, label)
    assert set(np.unique(resized)) == {0, 3, 255}
    one_hot = labels_to_one_hot(torch.from_numpy(flipped)[None], 12, ignore_index=255)
    assert one_hot[0, :, 0].sum() == 0 and one_hot[0, :, 1:].sum(0).eq(1).all()


def test_flip_swaps_left_and_right_classes(toy_dir):
    plain = SegmentationFolder(toy_dir, "test")
    flipped = SegmentationFolder(toy_dir, "test", flip_p=1.0, lr_pairs=TOY_LR_PAIRS)
    a, b = plain[0], flipped[0]
    assert torch.equal(b["image"], a["image"].flip(-1))
    swap = torch.arange(12)
    swap[[3, 4, 5, 6]] = torch.tensor([4, 3, 6, 5])
    assert torch.equal(b["label"], swap[a["label"].flip(-1)])
    # The toy world agrees: the mirrored scene's l_eye is on the image's left.
    xs = torch.nonzero(b["label"] == 3)[:, 1].float().mean()
    assert xs < torch.nonzero(b["label"] == 4)[:, 1].float().mean()


def test_resize_and_crop_keep_masks_exact_and_images_smooth():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 5, (40, 60))
    image = np.kron(rng.integers(0, 2, (10, 15, 1)) * 255, np.ones((4, 4, 3))).astype(np.uint8)
    for size in (17, 80):
        small = resize_label(label, (size, size))
        assert small.shape == (size, size) and set(np.unique(small)) <= set(np.unique(label))
    assert np.array_equal(resize_label(label, (80, 120))[::2, ::2], label)
    out_image, out_label = PairTransform(resize=30, crop=(24, 30))(image, label)
    assert out_image.shape == (24, 30, 3) and out_label.shape == (24, 30)
    assert ((out_image > 10) & (out_image < 245)).any()  # bilinear, antialiased: in-between grey levels
    torch.manual_seed(1)
    random_crop = PairTransform(crop=16, random_crop=True)
    crops = {random_crop(image, label)[1].tobytes() for _ in range(4)}
    assert len(crops) > 1


def test_colour_masks_with_a_palette(tmp_path):
    label = np.array([[0, 1, 2], [11, 11, 3]])
    split = tmp_path / "colour"
    save_pair(split, "a", np.zeros((2, 3, 3), np.uint8), np.zeros((2, 3), np.uint8))
    Image.fromarray(colour_labels(label, TOY_PALETTE)).save(split / "labels" / "a.png")
    data = SegmentationFolder(split, num_classes=12, label_colors=TOY_PALETTE)
    assert np.array_equal(data[0]["label"].numpy(), label)
    bad = colour_labels(label, TOY_PALETTE)
    bad[0, 0] = (1, 2, 3)
    Image.fromarray(bad).save(split / "labels" / "a.png")
    with pytest.raises(DataError, match=r"colours \[\(1, 2, 3\)\] are not in the palette"):
        data[0]
    with pytest.raises(DataError, match="class ids are expected"):
        read_label(split / "labels" / "a.png", 12)


def test_colour_labels_draws_ignored_pixels_in_the_ignore_colour():
    labels = torch.tensor([[[0, 1], [255, -1]]])  # (1, 2, 2): two classes, two ignored pixels
    colours = colour_labels(labels, TOY_PALETTE)
    assert colours.shape == (1, 2, 2, 3) and colours.dtype == np.uint8
    assert colours[0, 0, 1].tolist() == list(TOY_PALETTE[1])
    assert colours[0, 1].tolist() == [list(IGNORE_COLOUR)] * 2
    assert tuple(IGNORE_COLOUR) not in {tuple(c) for c in TOY_PALETTE}


# ---------------------------------------------------------------------------------------------
# CelebAMask-HQ
# ---------------------------------------------------------------------------------------------
def test_celebamask_classes_in_the_standard_order():
    assert CELEBAMASK_CLASSES == ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow",
                                  "l_ear", "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l",
                                  "neck", "cloth")
    assert len(CELEBAMASK_PALETTE) == 19 and CELEBAMASK_PALETTE[1] == (204, 0, 0)


def test_celebamask_preparation_from_the_raw_layout(tmp_path):
    raw, out = tmp_path / "CelebAMask-HQ", tmp_path / "celebamask32"
    ids = [0, 1, 2001, 28000, 29999]
    expected = make_raw_miniature(raw, ids, mask_size=32)
    assert mask_path(raw, 2001, "skin").parent.name == "1" and mask_path(raw, 28000, "skin").parent.name == "14"
    # An overlap, painted in the standard order: a hat (14) over the top rows beats the hair (13) there.
    hat = np.zeros((32, 32), bool)
    hat[:6] = True
    Image.fromarray(np.stack([hat * 255] * 3, -1).astype(np.uint8)).save(mask_path(raw, 1, "hat"))  # saved as RGB
    expected[1][hat & (expected[1] < 14)] = 14

    assert celebamask_main(["prepare", "--raw", str(raw), "--out", str(out), "--size", "32"]) == 0
    assert sorted(p.stem for p in (out / "test" / "labels").iterdir()) == ["28000", "29999"]
    assert sorted(p.stem for p in (out / "train" / "images").iterdir()) == ["0", "1", "2001"]
    for image_id in ids:
        split = "test" if image_id >= 28000 else "train"
        label = read_label(out / split / "labels" / f"{image_id}.png", 19)
        assert np.array_equal(label, expected[image_id]), image_id
        assert read_image(out / split / "images" / f"{image_id}.jpg").shape == (32, 32, 3)  # from 64x64
    assert preflight.main([str(out)]) == 0

    data = CelebAMaskHQ(out, "train", flip=True)
    assert data.num_classes == 19 and data.class_names == CELEBAMASK_CLASSES and len(data) == 3
    assert data[0]["label"].max() < 19

    counts = prepare_celebamask(raw, tmp_path / "small", size=16, test_from=2001)
    assert counts == {"train": 2, "test": 3}
    small = read_label(tmp_path / "small" / "test" / "labels" / "2001.png", 19)
    assert np.array_equal(small, resize_label(expected[2001], (16, 16)))


def test_celebamask_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="unpacked CelebAMask-HQ"):
        prepare_celebamask(tmp_path / "nowhere", tmp_path / "out")
    raw = tmp_path / "raw"
    make_raw_miniature(raw, [5], mask_size=16)
    for path in (raw / "CelebAMask-HQ-mask-anno").rglob("*.png"):
        path.unlink()
    with pytest.raises(DataError, match="point --raw at the release root"):
        prepare_celebamask(raw, tmp_path / "out")


def test_items_batch_into_what_the_model_consumes():
    batch = torch.utils.data.default_collate([ToyFaces(2)[i] for i in range(2)])
    assert batch["image"].shape == (2, 3, 64, 64) and batch["label"].shape == (2, 64, 64)
    assert labels_to_one_hot(batch["label"], 12).sum(1).eq(1).all()


def test_toy_batch_is_the_dataset_items_stacked():
    images, labels = toy_batch(3, "test", size=32, seed=1, start=2)
    data = ToyFaces(5, size=32, seed=1, split="test")
    assert torch.equal(images, torch.stack([data[i]["image"] for i in (2, 3, 4)]))
    assert torch.equal(labels, torch.stack([data[i]["label"] for i in (2, 3, 4)]))
    one_hot = labels_to_one_hot(labels, 12)
    assert torch.equal(classes_present(one_hot), torch.stack([(labels == c).flatten(1).any(1) for c in range(12)], 1))
    with pytest.raises(ValueError, match="no items"):
        stack_items([])


# ---------------------------------------------------------------------------------------------
# Checked before the first step: the training pre-flight and the checker's missing/empty splits
# ---------------------------------------------------------------------------------------------
def _train_cfg(data, **overrides):
    from ca2sis_lib.training.config import resolve_config

    return resolve_config("smoke", overrides={"data": str(data), "out_dir": "unused", "augment": False, **overrides})


def test_preflight_catches_a_truncated_png_before_step_one(toy_dir, tmp_path):
    import shutil

    from ca2sis_lib.training.data import build_dataset

    split = tmp_path / "train"
    shutil.copytree(toy_dir / "train", split)
    shutil.copy(toy_dir / "dataset.json", tmp_path / "dataset.json")
    dataset = build_dataset(_train_cfg(split), 12, 64)  # clean: passes, dataset.json's left/right pairs honoured
    assert dataset.transform.lr_pairs == tuple(map(tuple, TOY_LR_PAIRS))
    png = split / "images" / "000003.png"
    png.write_bytes(png.read_bytes()[:-40])  # cut off, as by a failed copy
    label = split / "labels" / "000001.png"
    label.write_bytes(label.read_bytes()[:-40])
    cut_off = r"(?s)2 problem\(s\).*before the first step.*000003.png: cannot read this image"
    with pytest.raises(DataError, match=cut_off):
        build_dataset(_train_cfg(split), 12, 64)
    report = check_split(split, 12)
    assert len(report.problems) == 2 and "000001.png: cannot read this label map" in report.problems[0]


def _damaged_in_the_middle(path: Path) -> None:
    """Overwrite 16 bytes in the middle of a file's compressed data: its header and end marker stay intact."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(16)
    path.write_bytes(bytes(data))


def test_preflight_decodes_every_file_in_full(toy_dir, tmp_path, capsys):
    """A PNG damaged in the middle (complete header, IEND chunk at its end) passed the header scan and
    failed hours later; every image and label is now decoded in full before the first step."""
    import shutil

    from ca2sis_lib.training.data import build_dataset

    split = tmp_path / "train"
    shutil.copytree(toy_dir / "train", split)
    for path in (split / "images" / "000002.png", split / "labels" / "000004.png"):
        _damaged_in_the_middle(path)
        assert path.read_bytes().endswith(b"IEND\xaeB`\x82")
    with pytest.raises(DataError, match=r"(?s)2 problem\(s\).*before the first step.*000002.png: cannot read this "
                                        r"image.*000004.png: cannot read this label map.*cut off or damaged"):
        build_dataset(_train_cfg(split), 12, 64)
    shutil.copy(toy_dir / "train" / "images" / "000002.png", split / "images" / "000002.png")
    shutil.copy(toy_dir / "train" / "labels" / "000004.png", split / "labels" / "000004.png")
    assert len(build_dataset(_train_cfg(split), 12, 64)) == 6
    assert "data check: 6 pairs read in full" in capsys.readouterr().err


def test_a_16_bit_image_is_read_with_its_bit_depth(tmp_path):
    """A 16-bit grey PNG used to be clipped to white by convert('RGB'); 65535 is white, 0 black."""
    levels = np.arange(64, dtype=np.uint16)[None, :].repeat(64, 0) * 1000 + 535  # 535 .. 63535
    split = tmp_path / "sixteen"
    _write_pair(split, "a", np.zeros((64, 64), np.uint8))
    Image.fromarray(levels).save(split / "images" / "a.png")  # Pillow writes a 16-bit PNG (mode I;16)
    assert Image.open(split / "images" / "a.png").mode == "I;16"
    image = read_image(split / "images" / "a.png")
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
    assert np.array_equal(image[..., 0], np.rint(levels / 257).astype(np.uint8)) and (image[..., 0] < 250).mean() > 0.9
    item = SegmentationFolder(split, num_classes=12)[0]
    assert item["image"].min() < -0.98 and item["image"].max() > 0.93  # dark on the left, bright on the right
    Image.fromarray(levels.astype(np.int32)).save(split / "images" / "a.tif")  # 32-bit integers: range unknown
    (split / "images" / "a.png").unlink()
    with pytest.raises(DataError, match="a 32-bit integer image .* save it as an 8-bit or 16-bit PNG"):
        SegmentationFolder(split, num_classes=12)[0]


@pytest.mark.parametrize("orientation, stored", [(3, lambda a: np.rot90(a, 2)), (6, lambda a: np.rot90(a, 1)),
                                                 (8, lambda a: np.rot90(a, -1))])
@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_exif_orientation_is_applied_so_image_and_label_stay_aligned(tmp_path, orientation, stored, suffix):
    """A phone stores a photo sideways with an EXIF orientation tag; whoever drew the label saw it upright.
    The pixels were read as stored, misaligned with the label (silently, for square images)."""
    label = np.zeros((48, 48), np.uint8)
    label[4:20, 6:40] = 1  # a wide bar near the top: every rotation moves it
    label[30:44, 30:44] = 2
    upright = np.array(TOY_PALETTE, np.uint8)[label]  # each class in its palette colour
    split = tmp_path / "exif"
    _write_pair(split, "a", label)
    (split / "images" / "a.png").unlink()
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    Image.fromarray(np.ascontiguousarray(stored(upright))).save(split / "images" / f"a.{suffix}", exif=exif,
                                                                **({"quality": 100} if suffix == "jpg" else {}))
    image = read_image(split / "images" / f"a.{suffix}")
    tolerance = 40 if suffix == "jpg" else 0  # JPEG blurs colour edges
    inside = np.ones_like(label, dtype=bool)  # two pixels or more away from every edge between classes
    for shift in (-2, -1, 1, 2):
        inside &= (np.roll(label, shift, 0) == label) & (np.roll(label, shift, 1) == label)
    assert np.abs(image.astype(int) - upright)[inside].max() <= tolerance
    item = SegmentationFolder(split, num_classes=12)[0]
    assert torch.equal(item["label"], torch.from_numpy(label.astype(np.int64)))
    assert check_split(split, 12).ok


def test_regenerating_toy_data_into_an_old_folder_leaves_no_stale_pairs(tmp_path, capsys):
    """Written again with fewer samples, the command kept the earlier run's extra pairs (train on 5 files,
    not 3). It now replaces what it wrote before, and only that (ca2sis_lib.owned_folder's rule)."""
    out = tmp_path / "toy"
    assert toy_main(["--out", str(out), "--size", "16", "--train", "5", "--test", "2"]) == 0
    assert toy_main(["--out", str(out), "--size", "16", "--train", "3", "--test", "2"]) == 0
    for sub, suffix in (("images", "png"), ("labels", "png"), ("params", "json")):
        assert sorted(p.name for p in (out / "train" / sub).iterdir()) == [f"00000{i}.{suffix}" for i in range(3)]
    assert len(SegmentationFolder(out, "train")) == 3 and json.loads((out / "dataset.json").read_text())["splits"] == {
        "train": 3, "test": 2}
    capsys.readouterr()
    (out / "train" / "images" / "holiday.jpg").write_bytes(b"not toy data")  # someone else's file: never removed
    assert toy_main(["--out", str(out), "--size", "16", "--train", "2", "--test", "1"]) == 1
    assert "not written by python -m ca2sis_lib.data.toy: train/images/holiday.jpg" in capsys.readouterr().err
    assert len(list((out / "train" / "images").iterdir())) == 4  # nothing removed
    other = tmp_path / "celeb"  # another dataset, or toy data of a version that left no marker
    (other / "train" / "images").mkdir(parents=True)
    (other / "dataset.json").write_text(json.dumps({"name": "celebamask_hq", "num_classes": 19}))
    assert toy_main(["--out", str(other), "--size", "16", "--train", "2", "--test", "1"]) == 1
    assert "is not empty and python -m ca2sis_lib.data.toy did not make it" in capsys.readouterr().err
    assert json.loads((other / "dataset.json").read_text())["name"] == "celebamask_hq"  # not overwritten
    with pytest.raises(ValueError, match="already holds 10 files .* which would stay beside the new samples"):
        write_toy_split(out, "train", 2, size=16)


def test_preflight_checks_label_values_sizes_and_the_ignore_label(tmp_path):
    from ca2sis_lib.training.data import build_dataset

    split = tmp_path / "root" / "train"
    labels = np.zeros((64, 64), np.uint8)
    labels[:8] = 255
    _write_pair(split, "a", labels)
    json.dump({"num_classes": 12, "ignore_index": 255}, open(tmp_path / "root" / "dataset.json", "w"))
    with pytest.raises(DataError, match="ignore_index 255 .* set --set model_overrides.ignore_index=255"):
        build_dataset(_train_cfg(split), 12, 64)
    assert len(build_dataset(_train_cfg(split), 12, 64, ignore_index=255)) == 1  # honoured when the model agrees
    (tmp_path / "root" / "dataset.json").write_text(json.dumps({"num_classes": 12}))
    with pytest.raises(DataError, match=r"a.png: label values \[255\]"):
        build_dataset(_train_cfg(split), 12, 64)
    _write_pair(split, "a", np.zeros((64, 64), np.uint8), np.zeros((64, 70, 3), np.uint8))
    with pytest.raises(DataError, match="is 70x64 but its label"):
        build_dataset(_train_cfg(split), 12, 64)
    with pytest.raises(DataError, match=f"dataset root with the splits .*; train on one split: --data {split}"):
        build_dataset(_train_cfg(tmp_path / "root"), 12, 64)
    with pytest.raises(DataError, match="no such folder"):
        build_dataset(_train_cfg(tmp_path / "nope"), 12, 64)


def test_checker_fails_an_empty_split_and_a_missing_folder(tmp_path, capsys):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "labels").mkdir()
    assert preflight.main([str(tmp_path / "empty"), "--num-classes", "3"]) == 1
    assert "the split is empty" in capsys.readouterr().out
    assert preflight.main([str(tmp_path / "missing")]) == 1
    assert "missing: no such folder" in capsys.readouterr().err
