"""What each section of `scripts/gpu_check.py` measures, run as its own process (one per job).

    python scripts/gpu_check_jobs.py '{"job": "speed", "plan": {...}, ...}'

Every job prints its results as lines ``@@row {json}`` as soon as it has them, so a job stopped at
its section's time budget still leaves what it measured. The parent (gpu_check.py) owns the
budgets, the plans (GPU sizes or the dry run's toy sizes) and the report; nothing here decides
what is measured, only how.
"""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ca2sis_lib from this checkout
from ca2sis_lib.training.step_timer import (  # noqa: E402
    GIB,
    PeakMemory,
    TrainingStep,
    compile_run,
    free_memory,
    perceptual_in_use,
    synthetic_batch,
    time_step,
    timing_run,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_training.ipynb"


def emit(row: dict[str, Any]) -> None:
    print("@@row " + json.dumps(row, default=str), flush=True)


def variant_overrides(plan: dict[str, Any], variant: str) -> dict[str, Any]:
    """TrainConfig overrides of one configuration: the plan's model, then the variant's switches."""
    switches = {k: v for k, v in plan["variants"][variant].items() if k != "untrained_vgg"}
    model = dict(plan.get("model_overrides", {}))
    if switches.pop("gradient_checkpointing", False):
        model["gradient_checkpointing"] = True  # memory mode: checkpointed transformers, token chunks
    return {**plan.get("train_overrides", {}), **switches, "model_overrides": model, "device": plan["device"]}


def describe(run: Any, variant: str) -> dict[str, Any]:
    """What a row was measured with, in words the report and the recommendations read."""
    return {"variant": variant, "amp": run.cfg.amp, "channels_last": run.cfg.channels_last,
            "memory_mode": bool(getattr(run.model_config, "gradient_checkpointing", False)),
            "perceptual": perceptual_in_use(run), "untrained_vgg": "untrained" in perceptual_in_use(run),
            "image_size": run.model_config.image_size,
            "classes": run.model_config.num_classes}


def build(plan: dict[str, Any], variant: str, work: Path) -> Any:
    untrained_vgg = bool(plan["variants"][variant].get("untrained_vgg"))
    return timing_run(plan["preset"], work / variant, untrained_vgg=untrained_vgg, **variant_overrides(plan, variant))


# -- environment -------------------------------------------------------------------------------------
def _driver() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def job_env(plan: dict[str, Any], **_: Any) -> None:
    """The device and the software: GPU, driver, CUDA, cuDNN, torch, and the switches that change speed."""
    import platform

    from ca2sis_lib.losses import vgg19_weights_available

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
                            "vgg19_cached": vgg19_weights_available(), "platform": platform.platform()}
    if plan["device"] == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: torch.cuda.is_available() is False. Run on a CUDA machine, or pass "
                             "--dry-run for the CPU check at toy sizes")
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info(0)
        info |= {"type": "cuda", "name": props.name, "memory_gib": total / GIB, "context_gib": (total - free) / GIB,
                 "capability": f"{props.major}.{props.minor}", "multiprocessors": props.multi_processor_count,
                 "bf16": torch.cuda.is_bf16_supported(), "driver": _driver(), "cuda": torch.version.cuda,
                 "cudnn": torch.backends.cudnn.version(), "cudnn_benchmark": torch.backends.cudnn.benchmark,
                 "matmul_tf32": torch.backends.cuda.matmul.allow_tf32, "cudnn_tf32": torch.backends.cudnn.allow_tf32}
    else:
        info |= {"type": "cpu", "name": platform.processor() or platform.machine(),
                 "bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}
    emit(info)


# -- speed: images/s and peak memory per configuration and batch ---------------------------------------
def job_speed(plan: dict[str, Any], work: Path, variants: list[str], **_: Any) -> None:
    for variant in variants:
        with build(plan, variant, work) as run:
            for batch in plan["batches"]:
                row = describe(run, variant) | {"batch": batch}
                try:
                    row |= time_step(TrainingStep(run, *synthetic_batch(run, batch)), plan["warmup"], plan["repeats"],
                                     plan["max_timed_s"])
                except torch.cuda.OutOfMemoryError as error:  # a smaller card: larger batches will not fit either
                    row["error"] = f"out of memory: {str(error).splitlines()[0]}"
                free_memory(run.device)
                emit(row)
                if "error" in row:
                    break
        free_memory(torch.device(plan["device"]))


# -- compile: the same step under torch.compile, its compile time apart --------------------------------
def job_compile(plan: dict[str, Any], work: Path, variant: str, **_: Any) -> None:
    import torch._dynamo

    config = torch._dynamo.config
    setattr(config, "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit", 64)
    config.disable = bool(plan.get("dynamo_disabled"))  # the dry run: the same calls, no graph captured
    with build(plan, variant, work) as run:
        compile_run(run, backend=plan["compile_backend"], dynamic=False)  # one graph set per batch size
        for batch in plan["compile_batches"]:
            step = TrainingStep(run, *synthetic_batch(run, batch))
            start = time.perf_counter()
            step()  # compiles G (train and no-grad) and D (frozen and trained) for this batch size
            if run.device.type == "cuda":
                torch.cuda.synchronize(run.device)
            first = time.perf_counter() - start
            row = describe(run, variant) | {"batch": batch, "compiled": True, "backend": plan["compile_backend"],
                                            "dynamo_disabled": config.disable}
            row |= time_step(step, 1, plan["repeats"], plan["max_timed_s"])
            row["compile_s"] = first - row["median_s"]  # the first call's time less one ordinary step
            emit(row)


# -- caps: the largest batch that fits a memory cap ------------------------------------------------------
def largest_fitting(fits: Callable[[int], bool], guess: int, limit: int) -> tuple[int, int | None, dict[int, bool]]:
    """The largest batch b in [1, limit] with ``fits(b)``, fitting being monotone (a batch that fits
    means every smaller one does). Starts at ``guess`` and gallops up or down (steps 1, 2, 4 …),
    then bisects. Returns (largest (0: not even 1), smallest that failed (None: ``limit`` fitted),
    every trial)."""
    tried: dict[int, bool] = {}

    def check(batch: int) -> bool:
        if batch not in tried:
            tried[batch] = fits(batch)
        return tried[batch]

    guess, stride = min(max(guess, 1), limit), 1
    if check(guess):
        low, high = guess, None
        while high is None and low < limit:
            probe = min(low + stride, limit)
            low, high = (probe, None) if check(probe) else (low, probe)
            stride *= 2
    else:
        low, high = 0, guess
        while low == 0 and high > 1:
            probe = max(high - stride, 1)
            low, high = (probe, high) if check(probe) else (0, probe)
            stride *= 2
    while high is not None and high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if check(mid) else (low, mid)
    return low, high, tried


class CapTrial:
    """Whether one step of ``run`` at a batch fits under a memory cap. CUDA: the allocator is limited
    to the cap (``set_per_process_memory_fraction``) and a step fits unless it runs out of memory.
    CPU (dry run): the step's added peak RSS is compared with the cap after the fact."""

    def __init__(self, run: Any) -> None:
        self.run, self.device, self.limit = run, run.device, math.inf
        if self.device.type == "cuda":
            free, self.total = torch.cuda.mem_get_info(self.device)
            # CUDA's own memory (context, libraries), which the allocator's limit does not count
            self.context = self.total - free - torch.cuda.memory_reserved(self.device)

    def set_cap(self, cap_gib: float) -> dict[str, Any]:
        """Limit to ``cap_gib`` less this device's CUDA context (which a card of that size also holds)."""
        if self.device.type != "cuda":
            self.limit = cap_gib * GIB
            return {"limit_gib": cap_gib, "whole_card": False}
        fraction = (cap_gib * GIB - self.context) / self.total
        torch.cuda.set_per_process_memory_fraction(min(1.0, fraction), self.device)
        free_memory(self.device)
        return {"limit_gib": min(1.0, fraction) * self.total / GIB, "whole_card": fraction >= 1.0}

    def __call__(self, batch: int) -> tuple[bool, float | None]:
        run, peak = self.run, PeakMemory(self.device)
        peak.reset()
        try:
            TrainingStep(run, *synthetic_batch(run, batch))()
            reading = peak.read()
            used = reading["peak_gib"] - (reading["base_gib"] if self.device.type != "cuda" else 0)
            fits = self.device.type == "cuda" or used * GIB <= self.limit
        except torch.cuda.OutOfMemoryError:
            fits, used = False, None
        except RuntimeError as error:  # cuBLAS / cuDNN report a workspace they could not get in their own words
            if not any(word in str(error) for word in ("ALLOC_FAILED", "out of memory", "CUDNN_STATUS")):
                raise
            fits, used = False, None
        if not fits:  # drop what the failed step left: gradients, and the scaler's per-step state
            run.opt_g.zero_grad(set_to_none=True)
            run.opt_d.zero_grad(set_to_none=True)
            if run.scaler.is_enabled():
                run.scaler = torch.amp.GradScaler(self.device.type, init_scale=run.scaler.get_scale())
        gc.collect()
        free_memory(self.device)
        return fits, used


def job_caps(plan: dict[str, Any], work: Path, variants: list[str], peaks: dict[str, list[list[float]]],
             **_: Any) -> None:
    """Per configuration and cap (ascending): the largest batch that fits, searched from a guess that
    the speed section's peaks give (peak ≈ a + b·batch), else from batch 1."""
    for variant in variants:
        with build(plan, variant, work) as run:
            TrainingStep(run, *synthetic_batch(run, 1))()  # Adam's state exists from here on, as in training
            trial = CapTrial(run)
            per_image = _per_image(peaks.get(variant, []))
            for cap in plan["caps_gib"]:
                emit(describe(run, variant) | search_cap(trial, cap, per_image, plan["batch_limit"]))
            if run.device.type == "cuda":
                torch.cuda.set_per_process_memory_fraction(1.0, run.device)


def search_cap(trial: CapTrial, cap: float, per_image: tuple[float, float] | None, limit: int) -> dict[str, Any]:
    """The largest batch under ``cap`` GiB, from the guess ``per_image`` (fixed, per-image GiB) gives."""
    info = trial.set_cap(cap)
    used: dict[int, float | None] = {}

    def fits(batch: int) -> bool:
        ok, used[batch] = trial(batch)
        return ok

    guess = int((info["limit_gib"] - per_image[0]) / per_image[1]) if per_image else 1
    largest, failed, tried = largest_fitting(fits, guess, limit)
    return info | {"cap_gib": cap, "largest_batch": largest, "first_failing": failed, "guess": guess,
                   "trials": [[b, ok, used[b]] for b, ok in tried.items()]}


def _per_image(points: list[list[float]]) -> tuple[float, float] | None:
    """Least-squares (fixed, per image) GiB of ``[[batch, peak_gib], ...]``; None with under two batches."""
    if len({b for b, _ in points}) < 2:
        return None
    n = len(points)
    mean_b, mean_p = sum(b for b, _ in points) / n, sum(p for _, p in points) / n
    slope = sum((b - mean_b) * (p - mean_p) for b, p in points) / sum((b - mean_b) ** 2 for b, _ in points)
    return (mean_p - slope * mean_b, slope) if slope > 0 else None


# -- resume: a killed run, resumed, against the same run uninterrupted ----------------------------------
def job_resume(plan: dict[str, Any], work: Path, mode: str, **_: Any) -> None:
    """As tests/test_train.py checks it on the CPU: one run straight through, the same run stopped half
    way (``max_steps_this_run``, what a kill leaves: the last checkpoint) and resumed, and a second
    straight run for the run-to-run difference the device itself makes."""
    from ca2sis_lib.checkpoint_io import load_checkpoint, tensor_digest
    from ca2sis_lib.train import train
    from ca2sis_lib.training.config import resolve_config

    caught: list[str] = []
    if mode == "deterministic":
        torch.use_deterministic_algorithms(True, warn_only=True)
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *args, **kwargs: caught.append(str(message).splitlines()[0])
    # (only warnings about determinism are kept below)
    settings = plan["resume"]
    steps = settings["steps"]

    def run(name: str, **more: Any) -> dict[str, Any]:
        overrides = {**settings["overrides"], "steps": steps, "checkpoint_every": steps, "progress": False,
                     "device": plan["device"], "out_dir": str(work / mode / name), **more}
        return train(resolve_config(settings["preset"], overrides=overrides))

    run("straight")
    run("straight_again")
    run("resumed", max_steps_this_run=steps // 2)
    run("resumed")
    states = {name: load_checkpoint(work / mode / name / "checkpoint.pt") for name in ("straight", "straight_again",
                                                                                         "resumed")}
    row: dict[str, Any] = {"mode": mode, "steps": steps, "stopped_at": steps // 2, "preset": settings["preset"]}
    for part in ("generator", "discriminator", "ema"):
        if states["straight"].get(part) is None:
            continue
        a, again, resumed = (states[name][part] for name in ("straight", "straight_again", "resumed"))
        row[part] = {"resumed_identical": tensor_digest(a) == tensor_digest(resumed),
                     "resumed_max_abs_diff": _max_abs_diff(a, resumed),
                     "rerun_identical": tensor_digest(a) == tensor_digest(again),
                     "rerun_max_abs_diff": _max_abs_diff(a, again)}
    row["nondeterministic_ops"] = sorted({text for text in caught if "determinis" in text})[:20]
    emit(row)


def _max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(((a[k].float() - b[k].float()).abs().max().item() for k in a if a[k].is_floating_point()),
               default=0.0)


# -- notebook 03 with papermill --------------------------------------------------------------------------
def job_notebook(plan: dict[str, Any], work: Path, name: str, parameters: dict[str, Any], outdir: str,
                 **_: Any) -> None:
    from ca2sis_lib.notebook_runner import execute

    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    parameters = {**parameters, "OUTPUT_DIR": str(folder / "outputs"), "RUN_DIR": str(folder / "run")}
    start = time.perf_counter()
    execute(NOTEBOOK, Path(outdir) / f"{name}.ipynb", parameters=parameters, cwd=folder,
            timeout=plan["cell_timeout_s"], stream=sys.stderr)
    metrics = json.loads((folder / "outputs" / "metrics.json").read_text())
    keep = ("preset", "steps_done", "batch_size", "seconds_per_step", "perceptual", "resumed_ok", "resume_exact",
            "final_losses")
    scores = ("psnr", "ssim", "rmse", "attention_miou", "samples")  # of the run's model and the shipped one
    quality = {k: {s: metrics[k][s] for s in scores if s in metrics[k]}
               for k in ("run_quality", "shipped_quality") if k in metrics}
    emit({"name": name, "parameters": parameters, "seconds": time.perf_counter() - start,
          "metrics": {k: metrics[k] for k in keep if k in metrics} | quality})


JOBS = {"env": job_env, "speed": job_speed, "compile": job_compile, "caps": job_caps, "resume": job_resume,
        "notebook": job_notebook}


def main() -> None:
    spec = json.loads(sys.argv[1])
    plan = spec["plan"]
    if plan.get("threads"):
        torch.set_num_threads(plan["threads"])
    JOBS[spec["job"]](plan, work=Path(spec["work"]), **spec.get("args", {}))


if __name__ == "__main__":
    main()
