"""Every metric on inputs with a known answer."""

import math

import pytest
import torch

from ca2sis_lib.image_metrics import perceptual_metrics, psnr, reconstruction_metrics, rmse, segmentation_scores, ssim


def test_identical_images():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.isinf(psnr(x, x)).all()
    assert torch.allclose(ssim(x, x), torch.ones(2))
    assert torch.equal(rmse(x, x), torch.zeros(2))


def test_known_shift():
    x = torch.zeros(1, 3, 32, 32)  # 0.5 in [0, 1] units
    y = x + 0.2  # +0.1 in [0, 1] units
    assert rmse(x, y).item() == pytest.approx(0.1, abs=1e-6)
    assert psnr(x, y).item() == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)
    # constant images: SSIM reduces to the luminance term (2·μx·μy + c1) / (μx² + μy² + c1)
    c1 = 0.01**2
    expected = (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1)
    assert ssim(x, y).item() == pytest.approx(expected, abs=1e-6)


def test_ssim_drops_with_noise():
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    noise = torch.randn_like(x)
    scores = [ssim(x, (x + s * noise).clamp(-1, 1)).item() for s in (0.05, 0.2, 0.8)]
    assert 1 > scores[0] > scores[1] > scores[2]
    assert reconstruction_metrics(x, x)["ssim"] == pytest.approx(1.0)


def test_known_iou():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1  # class 1: top half (8 px)
    pred = torch.zeros_like(target)
    pred[0, :1] = 1  # predicts only the first row (4 px)
    scores = segmentation_scores(pred, target, num_classes=3)
    assert scores["iou_per_class"][1] == pytest.approx(4 / 8)
    assert scores["iou_per_class"][0] == pytest.approx(8 / 12)
    assert 2 not in scores["iou_per_class"]
    assert scores["pixel_accuracy"] == pytest.approx(12 / 16)
    assert scores["miou"] == pytest.approx((0.5 + 8 / 12) / 2)


def test_ignore_label_is_left_out():
    target = torch.tensor([[[0, 1], [255, 255]]])
    pred = torch.tensor([[[0, 1], [1, 0]]])
    assert segmentation_scores(pred, target, 2, ignore_index=255)["pixel_accuracy"] == 1.0


def test_perceptual_metrics_report_numbers_or_an_explicit_reason():
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    results = perceptual_metrics(x, x)
    assert results["protocol"]["samples"] == 4
    for name in ("lpips", "fid", "kid"):
        value = results[name]
        assert (isinstance(value, float) and math.isfinite(value)) or value.startswith("unavailable: ")
