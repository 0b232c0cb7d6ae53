"""`make checkpoints`: train the shipped toy models, export them, measure their quality.

    python scripts/make_checkpoints.py [--runs runs] [--only ca2sis_tiny_toy ...] [--threads 2]

In order (a later one uses the earlier ones):

* ``ca2sis_tiny_toy``, ``sean_tiny_toy``: train with the project's own command and preset (resuming
  if the run folder has a checkpoint of the same recipe; a folder of another recipe is refused),
  export the EMA generator to ca2sis_lib/weights/<name>.pt (fp16, SHA-256 in manifest.json), evaluate
  on 200 held-out toy samples (test split, seeds never used in training);
* ``toy_segmenter``: the toy parser that judges layout fidelity, with its held-out accuracy;
* ``ca2sis_tiny_toy_mapping``: the second training stage (docs/architecture.md#mapping-network) on the shipped CA²-SIS:
only the
  mapping network learns; exported alone, the loader puts it into ``ca2sis_tiny_toy``; evaluated by
  noise diversity and the parser's mIoU of noise samples.

Every number goes to ca2sis_lib/weights/quality.json, with two references: the test scenes re-rendered
with their texture phases drawn anew, and each class painted in its true mean colour (sharp, then
blurred edges), which say where the SSIM target sits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

from ca2sis_lib.checkpoint_io import config_mismatch
from ca2sis_lib.evaluate import class_mean_colour_oracle, evaluate_noise, evaluate_toy, random_phase_oracle
from ca2sis_lib.loading import load_model
from ca2sis_lib.segmenter import load_segmenter
from ca2sis_lib.segmenter import main as segmenter_main
from ca2sis_lib.shipped import SHIPPED_DIR, check_replaceable, export_generator, load_shipped_file
from ca2sis_lib.train import main as train_main
from ca2sis_lib.training.config import resolve_config

MODELS = {"ca2sis_tiny_toy": "toy-ca2sis", "sean_tiny_toy": "toy-sean", "toy_segmenter": None,
          "ca2sis_tiny_toy_mapping": "toy-mapping"}


def check_run_matches_preset(run: Path, preset: str) -> None:
    """Refuse to resume a run folder that an older recipe started: its checkpoint would be finished
    with the new preset's settings and exported as if the preset had trained it from scratch."""
    config_path = run / "config.yaml"
    if not (run / "checkpoint.pt").exists() or not config_path.exists():
        return
    saved = yaml.safe_load(config_path.read_text())["train"]
    wanted = resolve_config(preset).to_dict()
    not_recipe = {"out_dir", "progress", "max_steps_this_run"}  # where and how a run reports, not what it learns
    # a key missing from an older config.yaml was added later, with a default that keeps the old behaviour
    compared = [k for k in saved if k in wanted and k not in not_recipe]
    differing = config_mismatch({k: saved[k] for k in compared}, {k: wanted[k] for k in compared})
    if differing:
        raise SystemExit(f"{run} was started with another recipe than the preset {preset!r} ({'; '.join(differing)}); "
                         f"move that folder aside (or delete it) to retrain from scratch")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs", help="training folders (checkpoints, logs, samples)")
    parser.add_argument("--only", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-training", action="store_true", help="export and evaluate finished runs only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.only:  # before any training: an export replaces only the file an earlier export wrote
        check_replaceable(SHIPPED_DIR, name)
    quality_path = SHIPPED_DIR / "quality.json"
    for name in args.only:
        start = time.time()
        if name == "toy_segmenter":
            if not args.skip_training:
                segmenter_main(["--out", str(SHIPPED_DIR), "--threads", str(args.threads)])
            continue
        run = Path(args.runs) / name
        if not args.skip_training:
            check_run_matches_preset(run, MODELS[name])
            train_main(["--preset", MODELS[name], "--out", str(run), "--set", "progress=false"])
        summary = json.loads((run / "summary.json").read_text())
        if name.endswith("_mapping"):
            path = export_generator(run, name, parts=("mapping",))
            model = load_model("ca2sis_tiny_toy")  # the generator, completed by the file just exported
            result = evaluate_noise(model, load_segmenter(), num_samples=200)
            result["mapping_parameters"] = sum(p.numel() for n, p in model.named_parameters()
                                               if n.startswith("mapping."))
        else:
            path = export_generator(run, name)
            model = load_shipped_file(path)
            result = evaluate_toy(model, num_samples=200)
            result["generator_parameters"] = sum(p.numel() for n, p in model.named_parameters()
                                                 if not n.startswith("mapping."))
        result.update({"preset": MODELS[name], "steps": summary["step"], "file_mb": path.stat().st_size / 2**20})
        quality = json.loads(quality_path.read_text()) if quality_path.exists() else {}
        if not args.skip_training:
            result["train_and_eval_minutes_this_call"] = (time.time() - start) / 60
            result["train_loop_minutes_this_call"] = summary["seconds"] / 60  # the training loop alone
        else:  # re-evaluation keeps the training times
            for key in ("train_and_eval_minutes_this_call", "train_loop_minutes_this_call"):
                if key in quality.get(name, {}):
                    result[key] = quality[name][key]
        quality[name] = result
        quality_path.write_text(json.dumps(quality, indent=2, sort_keys=True) + "\n")
        print(json.dumps({name: result}, indent=2), flush=True)
    # what the SSIM target is measured against: a renderer that knows all but the texture phases,
    # and a painter that knows only each class's mean colour (sharp, then blurred edges)
    quality = json.loads(quality_path.read_text()) if quality_path.exists() else {}
    quality["reference_random_texture_phase"] = random_phase_oracle(num_samples=200)
    quality["reference_class_mean_colour"] = class_mean_colour_oracle(num_samples=200)
    quality_path.write_text(json.dumps(quality, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
