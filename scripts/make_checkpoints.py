"""`make checkpoints`: train the shipped toy generators, export them, measure their quality.

    python scripts/make_checkpoints.py [--runs runs] [--only ca2sis_tiny_toy] [--threads 2]

For each model: train with the project's own command and preset (resuming if the run folder has a
checkpoint), export the EMA generator to data/checkpoints/<name>.pt (fp16, SHA-256 in
manifest.json), then evaluate it on 200 held-out toy samples (test split, seeds never used in
training) and write every number to data/checkpoints/quality.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ca2sis_lib.evaluate import evaluate_toy
from ca2sis_lib.shipped import SHIPPED_DIR, export_generator, load_shipped_file
from ca2sis_lib.train import main as train_main

MODELS = {"ca2sis_tiny_toy": "toy-ca2sis", "sean_tiny_toy": "toy-sean"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs", help="training folders (checkpoints, logs, samples)")
    parser.add_argument("--only", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-training", action="store_true", help="export and evaluate finished runs only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    quality_path = SHIPPED_DIR / "quality.json"
    quality = json.loads(quality_path.read_text()) if quality_path.exists() else {}
    for name in args.only:
        run = Path(args.runs) / name
        start = time.time()
        if not args.skip_training:
            train_main(["--preset", MODELS[name], "--out", str(run), "--set", "progress=false"])
        summary = json.loads((run / "summary.json").read_text())
        path = export_generator(run, name)
        model = load_shipped_file(path)
        result = evaluate_toy(model, num_samples=200)
        result.update({"preset": MODELS[name], "steps": summary["step"], "file_mb": path.stat().st_size / 2**20,
                       "generator_parameters": sum(p.numel() for n, p in model.named_parameters()
                                                   if not n.startswith("mapping."))})
        if not args.skip_training:
            result["train_and_eval_minutes_this_call"] = (time.time() - start) / 60
        quality[name] = result
        quality_path.write_text(json.dumps(quality, indent=2, sort_keys=True) + "\n")
        print(json.dumps({name: result}, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
