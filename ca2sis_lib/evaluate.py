"""Held-out quality of a trained generator on toy data: reconstruction and attention agreement.

    python -m ca2sis_lib.evaluate ca2sis_lib/weights/ca2sis_tiny_toy.pt --samples 200 --out quality.json

Reconstruction follows the SEAN/CA²-SIS protocol: style image = target, layout = its mask; PSNR,
SSIM and RMSE against the target. For CA²-SIS it also reports how well each cross-attention layer's
argmax over classes (head-averaged logits, the quantity L_att trains) agrees with the mask: mean
IoU over the classes present, per layer. Samples come from the toy *test* split, whose seeds are
never used in training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .contract import check_positive_int
from .data.toy import TOY_CLASSES, toy_batch
from .image_metrics import psnr, rmse, segmentation_scores, ssim
from .masks import as_one_hot, resize_mask
from .models.interface import SemanticGenerator, is_cross_attention, model_device


@torch.no_grad()
def evaluate_toy(model: SemanticGenerator, num_samples: int = 200, seed: int = 0, batch_size: int = 25
                 ) -> dict[str, Any]:
    check_positive_int(num_samples, "num_samples")
    check_positive_int(batch_size, "batch_size")
    config = model.config
    device = model_device(model)
    is_ca2sis = is_cross_attention(model)
    scores: dict[str, list[torch.Tensor]] = {"psnr": [], "ssim": [], "rmse": []}
    predicted: dict[str, list[torch.Tensor]] = {}
    targets: dict[str, list[torch.Tensor]] = {}
    for start in range(0, num_samples, batch_size):
        count = min(num_samples, start + batch_size) - start
        image, labels = (t.to(device) for t in toy_batch(count, "test", config.image_size, seed, start))
        out = model(image, labels, return_attention=True) if is_ca2sis else model(image, labels)
        for name, fn in (("psnr", psnr), ("ssim", ssim), ("rmse", rmse)):
            scores[name].append(fn(out.image, image).cpu())
        if is_ca2sis:
            one_hot = model.prepare_mask(labels)
            for layer, logits in out.attention.items():
                size = tuple(logits.shape[-2:])
                predicted.setdefault(layer, []).append(logits.mean(1).argmax(1).cpu())  # (B, h, w)
                targets.setdefault(layer, []).append(resize_mask(one_hot, size).argmax(1).cpu())
    result: dict[str, Any] = {name: torch.cat(v).mean().item() for name, v in scores.items()}
    result["samples"] = num_samples
    result["split"] = f"toy test, seed {seed}"
    if predicted:
        seg = {layer: segmentation_scores(torch.cat(predicted[layer]), torch.cat(targets[layer]), config.num_classes)
               for layer in predicted}
        result["attention_miou"] = {layer: s["miou"] for layer, s in seg.items()}
        # which classes the argmax finds: {layer: {class name: IoU}}
        result["attention_iou_per_class"] = {
            layer: {TOY_CLASSES[c]: iou for c, iou in s["iou_per_class"].items()} for layer, s in seg.items()
        }
    return result


@torch.no_grad()
def evaluate_noise(model: SemanticGenerator, segmenter: nn.Module | None = None, num_samples: int = 200,
                   seed: int = 0, batch_size: int = 25) -> dict[str, Any]:
    """Noise-driven generation (docs/architecture.md#mapping-network) on toy test layouts: two samples per layout.

    ``noise_diversity``: mean |x1 - x2| (images in [0, 1]) between the two samples of a layout;
    ``real_style_diversity``: its scale, the same for two real test faces' style codes on the layout
    (global style transfer from the next two faces of the batch);
    ``noise_layout_miou``: the toy parser's mIoU of the samples against their layout (does the
    generated face still follow the mask?), beside the same score of reconstructions.
    """
    from .editing import generate_from_noise, reconstruct, transfer_style

    check_positive_int(num_samples, "num_samples")
    check_positive_int(batch_size, "batch_size")
    config = model.config
    diversity, real_diversity, samples, recons, layouts = [], [], [], [], []
    for start in range(0, num_samples, batch_size):
        count = min(num_samples, start + batch_size) - start
        image, labels = toy_batch(count, "test", config.image_size, seed, start)
        pair = generate_from_noise(model, labels, num_samples=2, seed=seed + start).cpu()  # (2, B, 3, H, W)
        diversity.append(((pair[0] - pair[1]).abs() / 2).mean(dim=(1, 2, 3)))
        real = [transfer_style(model, image, labels, image.roll(k, 0), labels.roll(k, 0)).cpu() for k in (1, 2)]
        real_diversity.append(((real[0] - real[1]).abs() / 2).mean(dim=(1, 2, 3)))
        samples.append(pair[0])
        recons.append(reconstruct(model, image, labels).cpu())
        layouts.append(labels)
    result: dict[str, Any] = {"noise_diversity": torch.cat(diversity).mean().item(),
                              "real_style_diversity": torch.cat(real_diversity).mean().item(), "samples": num_samples,
                              "split": f"toy test, seed {seed}"}
    if segmenter is not None:
        labels = torch.cat(layouts)
        result["noise_layout_miou"] = segmentation_scores(segmenter.predict(torch.cat(samples)), labels,
                                                          config.num_classes)["miou"]
        result["reconstruction_layout_miou"] = segmentation_scores(segmenter.predict(torch.cat(recons)), labels,
                                                                   config.num_classes)["miou"]
    return result


def random_phase_oracle(num_samples: int = 200, seed: int = 0, size: int = 64) -> dict[str, Any]:
    """How far a model that gets every colour, shape and light right, but not the phase of the
    textures, can go: each test scene re-rendered with its stripe and mottling phases drawn anew
    (numpy seed 12345), scored by PSNR / SSIM against the original.

    A style code averaged over a class region carries little phase information, so this is a
    practical ceiling for toy reconstructions (the issue's SSIM target sits below it).
    """
    import dataclasses
    import math

    import numpy as np

    from .data.common import make_item
    from .data.toy import render_sample, sample_scene

    rng = np.random.default_rng(12345)
    originals, redrawn = [], []
    for index in range(num_samples):
        layout, style = sample_scene(index, seed, "test")
        classes = tuple(
            dataclasses.replace(c, phase=rng.uniform(0, 2 * math.pi),
                                waves=tuple((f, turn, rng.uniform(0, 2 * math.pi)) for f, turn, _ in c.waves))
            for c in style.classes
        )
        for target, scene_style in ((originals, style), (redrawn, dataclasses.replace(style, classes=classes))):
            image, labels = render_sample(layout, scene_style, size)
            target.append(make_item(image, labels, "")["image"])
    real, fake = torch.stack(originals), torch.stack(redrawn)
    return {"psnr": psnr(fake, real).mean().item(), "ssim": ssim(fake, real).mean().item(), "samples": num_samples,
            "split": f"toy test, seed {seed}", "what": "true scene, texture phases redrawn"}


def class_mean_colour_oracle(num_samples: int = 200, seed: int = 0, size: int = 64,
                             blur_sigmas: tuple[float, ...] = (1.0, 1.5),
                             mask_sizes: tuple[int, ...] = (32,)) -> dict[str, Any]:
    """A painter that fills every class region of a test image with that region's true mean colour:
    exact edges, no shading, no texture. Also scored after a Gaussian blur of ``blur_sigmas`` pixels
    (kernel 7), which shows how much of SSIM rests on sharp class boundaries, and when it only sees
    the mask nearest-resized to ``mask_sizes`` (what a mask embedder at that resolution sees) and
    scaled back up, nearest or bilinear: how much a coarse mask embedding costs by itself.
    """
    import torch.nn.functional as F
    import torchvision.transforms.functional as TF

    real, labels = toy_batch(num_samples, "test", size, seed)  # (N, 3, H, W) in [-1, 1], (N, H, W)
    one_hot = as_one_hot(labels, len(TOY_CLASSES))  # (N, K, H, W)
    area = one_hot.sum(dim=(2, 3)).clamp(min=1)  # (N, K)
    mean_colour = torch.einsum("nchw,nkhw->nkc", real, one_hot) / area[..., None]  # (N, K, 3)

    def paint(masks: torch.Tensor) -> torch.Tensor:  # (N, K, H, W) -> (N, 3, H, W)
        return torch.einsum("nkc,nkhw->nchw", mean_colour, masks)

    painted = paint(one_hot)
    result: dict[str, Any] = {"psnr": psnr(painted, real).mean().item(), "ssim": ssim(painted, real).mean().item(),
                              "samples": num_samples, "split": f"toy test, seed {seed}",
                              "what": "each class region painted in its true mean colour"}
    for sigma in blur_sigmas:
        blurred = TF.gaussian_blur(painted, 7, sigma)
        result[f"blurred_{sigma:g}px"] = {"psnr": psnr(blurred, real).mean().item(),
                                          "ssim": ssim(blurred, real).mean().item()}
    for side in mask_sizes:
        coarse = resize_mask(one_hot, (side, side))  # (N, K, side, side), as MaskEmbedder resizes
        upsampled = {"nearest": F.interpolate(coarse, size=(size, size), mode="nearest"),
                     "bilinear": F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)}
        for mode, seen in upsampled.items():
            painted_coarse = paint(seen)
            result[f"mask_{side}px_{mode}_up"] = {"psnr": psnr(painted_coarse, real).mean().item(),
                                                  "ssim": ssim(painted_coarse, real).mean().item()}
    return result


def main(argv: list[str] | None = None) -> int:
    from .loading import load_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a training checkpoint.pt or a shipped generator file")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    model = load_model(args.checkpoint)
    result = evaluate_toy(model, args.samples, args.seed)
    result["checkpoint"] = str(args.checkpoint)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
