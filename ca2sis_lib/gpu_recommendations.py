"""Which precision and batch to train the paper preset with on a given GPU, from measurements only.

    from ca2sis_lib.gpu_recommendations import gpu_recommendations
    print(gpu_recommendations())   # a markdown table, or "not measured on a GPU yet"

The table is rendered from ``benchmarks/results/gpu_check.json``, which ``scripts/gpu_check.py``
writes on a CUDA machine (docs/performance.md#on-a-gpu). Nothing in it is typed by hand: each GPU
class gets the configuration that was fastest on the measured device among those that fitted the
class's memory there (an emulated memory cap), with that device's images/s at it and the hours the
paper's schedule would take at that rate. Without a GPU run (no file, or only a CPU dry run) the
answer is exactly :data:`NOT_MEASURED`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "gpu_check.json"
NOT_MEASURED = "not measured on a GPU yet"


@dataclass(frozen=True)
class GpuClass:
    name: str
    memory_gib: int  # the memory cap the check emulates for it
    bf16: bool  # bf16 arithmetic in hardware (Ampere and newer)


# Colab's runtimes (free: T4; paid: L4, A100) and the usual research cards
GPU_CLASSES = (
    GpuClass("T4 (Colab's free GPU)", 15, bf16=False),
    GpuClass("L4 (Colab)", 24, bf16=True),
    GpuClass("A100 40 GB (Colab)", 40, bf16=True),
    GpuClass("A100 / H100 80 GB", 80, bf16=True),
)


def paper_schedule_images() -> int:
    """Images the paper's schedule trains on: steps × batch of the ``paper`` preset (1.4 M × 2)."""
    from .training.config import PRESETS

    return PRESETS["paper"]["steps"] * PRESETS["paper"]["batch_size"]


def precision_label(row: dict[str, Any]) -> str:
    """'bf16 autocast', 'fp16 autocast + GradScaler' or 'fp32', then ', channels_last' / ', memory mode'."""
    label = {"none": "fp32", "bf16": "bf16 autocast", "fp16": "fp16 autocast + GradScaler"}[row["amp"]]
    extras = [name for flag, name in (("channels_last", "channels_last"), ("memory_mode", "memory mode"),
                                      ("compiled", "torch.compile"), ("untrained_vgg", "VGG19 term (untrained)"))
              if row.get(flag)]
    return ", ".join([label, *extras])


def _is_gpu_run(results: dict[str, Any] | None) -> bool:
    return bool(results) and not results.get("dry_run") and results.get("device", {}).get("type") == "cuda"


def recommend(results: dict[str, Any], gpu: GpuClass) -> dict[str, Any] | None:
    """The fastest measured (configuration, batch) that fits ``gpu``'s memory, or None if none does.

    A configuration is a row of the memory-cap search at ``gpu.memory_gib`` (bf16 ones only where
    the class has bf16); its batch is the fastest measured batch (of the speed section) that is
    no larger than the largest batch that fitted under the cap, with finite losses."""
    sections = results.get("sections", {})
    speed = [r for r in sections.get("speed", {}).get("rows", []) if r.get("images_per_s") and r.get("finite")]
    best = None
    for cap in sections.get("caps", {}).get("rows", []):
        usable = cap.get("cap_gib") == gpu.memory_gib and cap.get("largest_batch")
        if not usable or (cap["amp"] == "bf16" and not gpu.bf16):
            continue
        fitting = [r for r in speed if r["variant"] == cap["variant"] and r["batch"] <= cap["largest_batch"]]
        for row in fitting:
            if best is None or row["images_per_s"] > best["images_per_s"]:
                best = {**row, "largest_batch": cap["largest_batch"], "whole_card": cap.get("whole_card", False)}
    return best


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def render(results: dict[str, Any] | None) -> str:
    """The recommendation table of ``results`` (a gpu_check.json), or :data:`NOT_MEASURED`."""
    if not _is_gpu_run(results):
        return NOT_MEASURED
    device = results["device"]
    name = device["name"]
    images = paper_schedule_images()
    lines = [f"Measured on one {name} ({device['memory_gib']:.0f} GiB; driver {device.get('driver', '?')}, CUDA "
             f"{device.get('cuda', '?')}, cuDNN {device.get('cudnn', '?')}, torch {device.get('torch', '?')}) on "
             f"{results.get('started', '?')[:10]} by `python scripts/gpu_check.py`; perceptual term: "
             f"{results.get('perceptual', '?')}.", "",
             f"| GPU class (memory) | precision | batch | largest batch that fits | images/s on the {name} | "
             f"hours for the paper's schedule on the {name} |", "|---|---|---:|---:|---:|---:|"]
    for gpu in GPU_CLASSES:
        best = recommend(results, gpu)
        memory = f"{gpu.memory_gib} GiB" + ("" if gpu.bf16 else ", no bf16")
        if best is None:
            lines.append(f"| {gpu.name} ({memory}) | nothing measured fitted | | | | |")
            continue
        hours = images / best["images_per_s"] / 3600
        whole = " (the whole card)" if best["whole_card"] else ""
        lines.append(f"| {gpu.name} ({memory}{whole}) | {precision_label(best)} | {best['batch']} | "
                     f"{best['largest_batch']} | {_number(best['images_per_s'])} | {_number(hours)} |")
    lines += _with_vgg19(results, name, images)
    lines += ["", f"Memory is emulated: each class's memory is the {name}'s allocator limit "
              "(`torch.cuda.set_per_process_memory_fraction`, the class's memory less this device's CUDA context); "
              f"speed is the {name}'s only. A T4, L4 or A100 is slower, so read images/s and hours as this device's "
              "at that setting, not that card's. Batch: the fastest of the measured batches that fits. The paper's "
              f"schedule is {images:,} images ({images // 2:,} steps at batch 2); at another batch that is "
              f"{images:,} / batch steps, and the paper gives no learning rate for another batch."]
    return "\n".join(lines)


def _with_vgg19(results: dict[str, Any], name: str, images: int) -> list[str]:
    """A line on the fastest row timed with the VGG19 term's cost (random weights), if there is one."""
    rows = [r for r in results.get("sections", {}).get("speed", {}).get("rows", [])
            if r.get("untrained_vgg") and r.get("finite") and r.get("images_per_s")]
    if not rows:
        return []
    best = max(rows, key=lambda r: r["images_per_s"])
    hours = images / best["images_per_s"] / 3600
    return ["", f"With the paper's VGG19 perceptual term, timed with random weights in its place (its cost, "
            f"not its values: its weights could not be had here), {precision_label(best).split(', VGG19')[0]} at "
            f"batch {best['batch']} ran at {_number(best['images_per_s'])} images/s on the {name}: "
            f"{_number(hours)} hours for the paper's schedule."]


def gpu_recommendations(path: str | Path | None = None) -> str:
    """The table from ``path`` (default :data:`RESULTS_FILE`), or :data:`NOT_MEASURED` without a GPU run."""
    path = Path(path) if path is not None else RESULTS_FILE
    return render(json.loads(path.read_text()) if path.is_file() else None)
