"""One training loop for CA²-SIS and the SPADE family, from a laptop CPU to many GPUs.

    python -m ca2sis_lib.train --preset toy-ca2sis --out runs/toy --set steps=500
    torchrun --standalone --nproc_per_node=4 -m ca2sis_lib.train --preset paper --data DIR --out runs/paper

A preset's learning-rate decay scales with ``--set steps`` unless ``decay_start`` is set too (the
first command decays from step 325, as the preset does from 1300 of 2000). Re-running a command
resumes its ``--out`` folder exactly (docs/promises.md).

nanoGPT style: a run is set up once (:func:`~ca2sis_lib.training.run.setup_run`: data, models,
optimisers, EMA, resume), then every step is a generator update (hinge GAN + feature matching +
perceptual + L_att), an EMA update and a discriminator update, with the learning rate held and then
decayed linearly to zero (TTUR Adam, β = (0, 0.9)). The steps are in :mod:`ca2sis_lib.training.steps`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

import torch
import torch.distributed as torch_dist

from .checkpoint_io import CheckpointReadError, CheckpointWriteError, tensor_digest
from .data.preflight import DataError
from .masks import as_one_hot
from .training.config import PRESETS, TrainConfig, parse_overrides, resolve_config
from .training.lock import RunLockedError
from .training.processes import average_across_ranks
from .training.resume import ResumeError
from .training.rng import step_seed
from .training.run import Run, setup_run
from .training.run_log import append_csv, save_grid, truncate_log
from .training.schedule import ema_decay_at, lr_factor
from .training.steps import discriminator_step, generator_step, set_learning_rates, update_ema


def train(cfg: TrainConfig) -> dict[str, Any]:
    run = setup_run(cfg)  # takes the run folder: a second run on it stops here
    with run:  # releases the folder at the end, after an error too
        begin(run)
        palette = getattr(run.dataset, "palette", None)  # the toy faces and folders with dataset.json have one
        start_time = time.time()
        for step, batch in zip(range(run.start_step, run.end_step), run.batches()):
            torch.manual_seed(step_seed(cfg.seed, step, run.dist.rank))  # this step's noise, on this rank
            set_learning_rates(run, lr_factor(step, cfg))
            real = batch["image"].to(run.device, memory_format=run.layout)  # (B, 3, H, W) in [-1, 1]
            one_hot = as_one_hot(batch["label"].to(run.device), run.model_config.num_classes,
                                 run.model_config.ignore_index).contiguous(memory_format=run.layout)
            noise = torch.randn(real.shape[0], run.generator.noise_dim, device=run.device)  # (B, noise_dim)

            fake, losses = generator_step(run, real, one_hot, noise)
            update_ema(run.ema, run.generator, ema_decay_at(step, cfg.ema_decay, cfg.ema_warmup))
            losses["d_hinge"] = discriminator_step(run, real, one_hot, noise, fake)

            log_losses(run, step, losses)
            if run.dist.is_main and palette is not None and _due(step, cfg.sample_every, run.end_step):
                save_grid(run.out_dir / "samples" / f"step_{step + 1:07d}.png", batch["label"], real, fake, palette)
            if _due(step, cfg.checkpoint_every, run.end_step):
                run.save(step + 1)
        return finish(run, time.time() - start_time)


def _due(step: int, every: int, end_step: int) -> bool:
    return (step + 1) % every == 0 or step + 1 == end_step


def begin(run: Run) -> None:
    """Write the resolved config; drop the log rows written after the step the run starts from (on
    resume its checkpoint's, else 0: a killed attempt's rows would be logged twice)."""
    from tqdm.auto import tqdm

    if run.dist.is_main:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        truncate_log(run.out_dir / "log.csv", run.start_step)  # first: a foreign log.csv stops the run here
        run.write_config_yaml()  # config.yaml: the settings and what each part of the run ran with
    run.bar = tqdm(total=run.end_step - run.start_step, disable=not (run.cfg.progress and run.dist.is_main),
                   desc="train")


def log_losses(run: Run, step: int, losses: dict[str, torch.Tensor]) -> None:
    """Average the losses over processes, stop on a non-finite one, log every ``log_every`` steps."""
    values = average_across_ranks({k: float(v.detach()) for k, v in losses.items()}, run.dist, run.device)
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        kept = (f"The last good checkpoint (step {run.saved_step}) is kept at {run.checkpoint_path}"
                if run.saved_step is not None else f"No checkpoint was written yet (none in {run.out_dir})")
        raise FloatingPointError(
            f"non-finite loss at step {step}: {bad}. {kept}; lower the learning rate or switch amp off, then "
            f"{'resume' if run.saved_step is not None else 'start again'}."
        )
    row = {"step": step + 1, "lr_g": run.opt_g.param_groups[0]["lr"]} | values
    run.history.append(row)
    run.bar.update(1)
    if run.dist.is_main and _due(step, run.cfg.log_every, run.end_step):
        append_csv(run.out_dir / "log.csv", row)
        run.bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in ("g_total", "d_hinge", "g_attn")})


def finish(run: Run, seconds: float) -> dict[str, Any]:
    """summary.json: steps done, last losses, and a digest of the generator on every process."""
    run.bar.close()
    digests = [tensor_digest(run.generator.state_dict())]
    if run.dist.enabled:
        mine, digests = digests[0], [None] * run.dist.world
        torch_dist.all_gather_object(digests, mine)
    cfg = run.cfg
    summary = {
        "steps_done": run.end_step - run.start_step, "step": run.end_step, "finished": run.end_step >= cfg.steps,
        "seconds": seconds, "world_size": run.dist.world, "generator_digests": digests,
        "checkpoint": str(run.checkpoint_path), "last": run.history[-1] if run.history else {},
        "perceptual": run.perceptual_kind,
    }
    if run.dist.is_main:
        (run.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if run.dist.enabled:
        torch_dist.barrier()
        torch_dist.destroy_process_group()
    return summary


def config_from_arguments(args: argparse.Namespace) -> TrainConfig:
    """The run a command line asks for: preset, --config file, --set overrides, --data and --out."""
    overrides = parse_overrides(args.set)
    overrides.update({k: v for k, v in (("data", args.data), ("out_dir", args.out)) if v})
    return resolve_config(args.preset, args.config, overrides)


def command_line() -> argparse.ArgumentParser:
    """The command's arguments (its ``--help`` shows this module's docstring, examples included)."""
    parser = argparse.ArgumentParser(prog="python -m ca2sis_lib.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="toy-ca2sis", help=f"one of {sorted(PRESETS)}")
    parser.add_argument("--config", help="YAML file of TrainConfig keys (applied after the preset)")
    parser.add_argument("--data", help="'toy' or a folder with images/ and labels/")
    parser.add_argument("--out", help="output folder (checkpoint.pt, log.csv, samples/, config.yaml)")
    parser.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                        help="override any config key (repeatable: every --set counts)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = command_line().parse_args(argv)
    try:
        cfg = config_from_arguments(args)
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        summary = train(cfg)
    except (RunLockedError, ResumeError, DataError, CheckpointWriteError, CheckpointReadError, FileExistsError,
            FileNotFoundError) as error:  # each one line naming the problem and the fix
        print(f"error: {error}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "generator_digests"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
