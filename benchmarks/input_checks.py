"""What do the input checks cost a training step? Tiny CA²-SIS + discriminator, forward and backward.

    python benchmarks/input_checks.py [--batch 8] [--repeats 15] [--device cpu|cuda]

One step = G(image, labels) → D(one-hot, fake) → hinge + L1 → backward, the same calls the trainer
makes, each of which runs the checks of ``ca2sis_lib/contract.py``. Steps with the value checks on
and off (``checks_disabled()``; shape checks always run) are interleaved, so drift in a shared
machine's load hits both alike; the median ratio on/off is the figure to read. The load average
(``os.getloadavg``) is printed beside it. ``checks_disabled`` also skips the label-range check that
existed before the contract, so the ratio is an upper bound on what the contract added.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from ca2sis_lib.contract import checks_disabled
from ca2sis_lib.data.toy import toy_batch
from ca2sis_lib.masks import labels_to_one_hot
from ca2sis_lib.models import CA2SIS, CA2SISConfig
from ca2sis_lib.models.discriminator import MultiscaleDiscriminator


def step(g: CA2SIS, d: MultiscaleDiscriminator, image: torch.Tensor, labels: torch.Tensor) -> None:
    fake = g(image, labels).image  # (B, 3, 64, 64)
    one_hot = labels_to_one_hot(labels, g.config.num_classes).to(image.device)
    pred = d(one_hot, fake)[-1][-1]  # (B, 1, h, w)
    loss = -pred.mean() + (fake - image).abs().mean()
    loss.backward()
    if image.device.type == "cuda":
        torch.cuda.synchronize()


def timed(g: CA2SIS, d: MultiscaleDiscriminator, image: torch.Tensor, labels: torch.Tensor, checks: bool) -> float:
    start = time.perf_counter()
    if checks:
        step(g, d, image, labels)
    else:
        with checks_disabled():
            step(g, d, image, labels)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="JSON file for the numbers (default: print only)")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    g, d = CA2SIS(CA2SISConfig.tiny()).to(device).train(), MultiscaleDiscriminator(12).to(device).train()
    image, labels = (t.to(device) for t in toy_batch(args.batch, "train", 64, 0, 0))
    for checks in (True, False):  # warm-up
        timed(g, d, image, labels, checks)
    on, off = [], []
    for i in range(args.repeats):  # interleaved, alternating which goes first
        order = (True, False) if i % 2 == 0 else (False, True)
        for checks in order:
            (on if checks else off).append(timed(g, d, image, labels, checks))
    ratios = [a / b for a, b in zip(on, off)]
    result = {
        "device": str(device), "batch": args.batch, "repeats": args.repeats, "threads": torch.get_num_threads(),
        "median_step_s_checks_on": statistics.median(on), "median_step_s_checks_off": statistics.median(off),
        "median_ratio_on_off": statistics.median(ratios),
        "ratio_quartiles": statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios,
        "load_average_1_5_15": list(os.getloadavg()), "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
