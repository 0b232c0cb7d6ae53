"""Does a refactor of the training code change the computation? Four seeded trainings, one digest each.

    python benchmarks/seeded_trainings.py [--json benchmarks/results/seeded_trainings.after.json]
                                          [--compare benchmarks/results/seeded_trainings.before.json]

Runs four short trainings through the library's own entry point (``ca2sis_lib.train.train``) on the
toy faces, on the CPU, with one thread, and prints the SHA-256 of each run's final generator,
discriminator and EMA weights (names and bytes, as saved in its ``checkpoint.pt``) and of its loss
log:

    reconstruction   CA²-SIS, the toy-ca2sis preset (L1, feature matching, GAN, class-balanced L_att, EMA)
    mapping          CA²-SIS's mapping stage on the reconstruction run's checkpoint (L_code, L_div, L_att)
    smoke            CA²-SIS, the smoke preset (a fresh fake for D, no EMA)
    sean             the SEAN-style baseline of the SPADE family, the toy-sean preset

The library trains two families (``ca2sis`` and ``sean``); the plain SPADE generator has no training
preset, so ``spade_forward`` adds the digest of a seeded SPADE generator's output and input
weights' gradients (one forward and backward), which guards the SPADE modulation code.

Equal digests before and after a change mean the change is bit-identical on this CPU and torch
version (both are printed: other CPUs may round differently, so compare digests from one machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from ca2sis_lib.checkpoint_io import load_checkpoint
from ca2sis_lib.models.spade import SPADEConfig, SPADEGenerator
from ca2sis_lib.train import train
from ca2sis_lib.training.config import resolve_config

SMALL = {"toy_samples": 16, "progress": False, "log_every": 1, "sample_every": 1000, "num_workers": 0,
         "device": "cpu", "amp": "none"}
TRAININGS: dict[str, tuple[str, dict[str, Any]]] = {  # name: (preset, overrides)
    "reconstruction": ("toy-ca2sis", {"steps": 6, "batch_size": 2}),
    "mapping": ("toy-mapping", {"steps": 4, "batch_size": 2, "lambda_diversity": 1.0, "lambda_fm": 0.0,
                                "code_images": 16, "code_samples": 8, "code_axes": 4}),
    "smoke": ("smoke", {}),
    "sean": ("toy-sean", {"steps": 6, "batch_size": 2}),
}


def weights_digest(checkpoint: Path) -> str:
    """SHA-256 over the generator, discriminator and EMA state dicts (key names and tensor bytes)."""
    state = load_checkpoint(checkpoint, map_location="cpu")
    digest = hashlib.sha256()
    for part in ("generator", "discriminator", "ema"):
        tensors = state[part] or {}  # no EMA when ema_decay is 0
        for name in sorted(tensors):
            digest.update(f"{part}.{name}".encode())
            digest.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def run_training(name: str, root: Path) -> dict[str, str]:
    preset, overrides = TRAININGS[name]
    overrides = {**SMALL, **overrides, "out_dir": str(root / name), "seed": 0}
    if name == "mapping":
        overrides["pretrained"] = str(root / "reconstruction" / "checkpoint.pt")  # after the reconstruction run
    train(resolve_config(preset, None, overrides))
    log = (root / name / "log.csv").read_bytes()
    return {"weights": weights_digest(root / name / "checkpoint.pt"), "log": hashlib.sha256(log).hexdigest()}


def spade_forward_digest() -> dict[str, str]:
    """A seeded tiny SPADE generator's output on a random label map and its weights' gradients."""
    torch.manual_seed(0)
    config = SPADEConfig.tiny()
    model = SPADEGenerator(config)
    label = torch.randint(0, config.num_classes, (2, config.image_size, config.image_size))
    image = model.decode(label).image  # (2, 3, H, W)
    image.square().mean().backward()
    digest = hashlib.sha256(image.detach().numpy().tobytes())
    for name, parameter in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(parameter.grad.numpy().tobytes())
    return {"weights": digest.hexdigest()}


def cpu_flags() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma") if f in flags]
    return f"{fields.get('Model name', '?').strip()}; flags: {' '.join(wanted)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the digests to this file")
    parser.add_argument("--compare", type=Path, help="a file written by --json: exit 1 unless every digest is equal")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    result: dict[str, Any] = {"torch": torch.__version__, "python": sys.version.split()[0], "cpu": cpu_flags(),
                              "threads": torch.get_num_threads(), "trainings": {}}
    with tempfile.TemporaryDirectory() as root:
        for name in TRAININGS:
            result["trainings"][name] = run_training(name, Path(root))
            print(f"{name:15s} weights {result['trainings'][name]['weights']}  log {result['trainings'][name]['log']}",
                  flush=True)
    result["trainings"]["spade_forward"] = spade_forward_digest()
    print(f"{'spade_forward':15s} weights {result['trainings']['spade_forward']['weights']}")
    print(f"torch {result['torch']}, {result['cpu']}, {result['threads']} thread")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        changed = [name for name in result["trainings"] if before["trainings"].get(name) != result["trainings"][name]]
        print(f"compared with {args.compare}: " + (f"CHANGED {changed}" if changed else "all digests identical"))
        if changed:
            sys.exit(1)


if __name__ == "__main__":
    main()
