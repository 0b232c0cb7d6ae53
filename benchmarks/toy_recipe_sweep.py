"""Which toy-recipe change moves the held-out SSIM and attention mIoU? Variants of `toy-ca2sis`, trained side by side.

    python benchmarks/toy_recipe_sweep.py --device cuda [--only base l1_20 ...] [--out runs/sweep]
    python benchmarks/toy_recipe_sweep.py --report runs/sweep        # the table of a finished sweep

Each variant is the `toy-ca2sis` preset with a few `--set` overrides (on the tiny model as it stood
at the sweep, ``BEFORE_SWEEP_MODEL``; ``shipped`` is the preset as it is), trained in its own process
(one CPU thread each, all on the same device) and evaluated like the shipped model: 200 held-out
toy samples, PSNR / SSIM and the attention argmax's mIoU per layer (`ca2sis_lib.evaluate`). Results
go to ``<out>/<variant>.json`` and a table to stdout.

This is for a GPU: on one H100, 12 variants of 1500 steps train together in about 6 minutes. On
the 2-core CPU, one variant takes 40-60 minutes, so run one at a time there (``--only``).
A sweep compares variants within one run on one device: GPU and CPU runs of the same recipe differ
by about 0.01 SSIM (numerics and the order of floating-point sums), so the recipe that ships is
retrained and measured on the CPU by ``make checkpoints``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# the toy-ca2sis recipe as it stood before the sweep; each variant changes a few of its keys
BEFORE_SWEEP: dict[str, str] = {"steps": "1500", "decay_start": "1000", "lambda_gan": "1.0", "lambda_l1": "10.0"}
CHANGES: dict[str, dict[str, str]] = {  # variant name -> what it changes; the names say what
    "base": {},
    "s2300": {"steps": "2300", "decay_start": "1500"},
    "s3000": {"steps": "3000", "decay_start": "2000"},
    "l1_20": {"lambda_l1": "20.0"},
    "l1_40": {"lambda_l1": "40.0"},
    "gan0": {"lambda_gan": "0.0", "lambda_fm": "0.0"},
    "fm0": {"lambda_fm": "0.0"},
    "b16": {"batch_size": "16"},
    "ema999": {"ema_decay": "0.999"},
    "decay500": {"decay_start": "500"},
    "pw50": {"attn_pos_weight_max": "50.0"},
    "s2300_l1_20": {"steps": "2300", "decay_start": "1500", "lambda_l1": "20.0"},
    "l1_20_gan05": {"lambda_gan": "0.5", "lambda_l1": "20.0"},
    "l1_40_gan05": {"lambda_gan": "0.5", "lambda_l1": "40.0"},
    "l1_20_fm0": {"lambda_l1": "20.0", "lambda_fm": "0.0"},
    "l1_20_ema99": {"lambda_l1": "20.0", "ema_decay": "0.99"},
    "l1_20_lrd4": {"lambda_l1": "20.0", "lr_d": "4e-4"},
    "l1_20_pw50": {"lambda_l1": "20.0", "attn_pos_weight_max": "50.0"},
}
# the tiny model as it stood then: style encoder 4 down, 3 up (finest style level read at 32²)
BEFORE_SWEEP_MODEL = ["model_overrides.style_downsamples=4", "model_overrides.style_upsamples=3"]
VARIANTS: dict[str, list[str]] = {  # variant name -> its `--set` overrides of the toy-ca2sis preset
    name: [f"{k}={v}" for k, v in (BEFORE_SWEEP | changes).items()] + BEFORE_SWEEP_MODEL
    for name, changes in CHANGES.items()
}
VARIANTS["shipped"] = []  # the preset as it is now (trained and measured on the CPU by `make checkpoints`)


def train_and_evaluate(name: str, out: Path, device: str) -> dict:
    """One variant, in this process: train from scratch, evaluate the EMA generator, write its JSON."""
    import torch

    from ca2sis_lib.evaluate import evaluate_toy
    from ca2sis_lib.loading import load_generator
    from ca2sis_lib.train import main as train_main

    torch.set_num_threads(1)
    run = out / name
    start = time.time()
    train_main(["--preset", "toy-ca2sis", "--out", str(run), "--set", f"device={device}", "progress=false",
                "sample_every=100000", "checkpoint_every=100000", *VARIANTS[name]])
    train_seconds = time.time() - start
    result = evaluate_toy(load_generator(run / "checkpoint.pt").to(device), num_samples=200)
    result.pop("attention_iou_per_class")
    result.update(variant=name, overrides=VARIANTS[name], device=device, train_seconds=train_seconds)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def report(out: Path) -> str:
    rows = ["| variant | overrides | PSNR | SSIM | attention mIoU 16² / 32² / 64² |", "|---|---|---:|---:|---|"]
    for path in sorted(out.glob("*.json"), key=lambda p: json.loads(p.read_text())["ssim"]):
        r = json.loads(path.read_text())
        miou = " / ".join(f"{v:.3f}" for v in r["attention_miou"].values())
        rows.append(f"| {r['variant']} | {' '.join(r['overrides'])} | {r['psnr']:.2f} | {r['ssim']:.3f} | {miou} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--device", default="cuda", help="cuda or cpu (cpu: one variant at a time)")
    parser.add_argument("--out", default="runs/sweep", type=Path)
    parser.add_argument("--report", type=Path, help="print the table of a finished sweep folder and stop")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: the child process of one variant
    args = parser.parse_args()
    if args.report:
        print(report(args.report))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.one:
        train_and_evaluate(args.one, args.out, args.device)
        return 0
    children = {}
    for name in args.only:
        log = (args.out / f"{name}.log").open("w")
        command = [sys.executable, __file__, "--one", name, "--device", args.device, "--out", str(args.out)]
        children[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    failed = [name for name, child in children.items() if child.wait() != 0]
    print(report(args.out))
    if failed:
        print(f"failed: {failed}; see {args.out}/<variant>.log", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
