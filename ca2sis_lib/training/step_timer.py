"""One full training step on a fixed batch, timed: what `make bench` and `scripts/gpu_check.py` measure.

    run = timing_run("paper", work_dir, amp="bf16")     # setup_run: models, Adam, scaler, as training has them
    step = TrainingStep(run, *synthetic_batch(run, 8))  # (8, 3, 256, 256) and (8, K, 256, 256) on run.device
    time_step(step, warmup=2, repeats=5)                # median seconds, images/s, peak memory

The step is the trainer's own (:mod:`.steps`, as :func:`ca2sis_lib.train.train` calls them): the
generator step (L_G and its Adam step), the EMA update and the discriminator step (L_D and its Adam
step). Only the batch differs from training: it is made on the device (random images, masks of
random 16×16 blocks, every class present), so data loading is not timed and any batch size can be
tried without a dataset that large.
"""

from __future__ import annotations

import gc
import math
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..losses import PerceptualLoss
from ..masks import as_one_hot
from .config import resolve_config
from .run import Run, setup_run
from .schedule import ema_decay_at
from .steps import discriminator_step, generator_step, update_ema

GIB = 2**30


def blocky_labels(batch: int, classes: int, size: int, block: int = 16, seed: int = 0) -> Tensor:
    """(batch, size, size) class ids, one random class per block × block square (seeded)."""
    g = torch.Generator().manual_seed(seed)
    side = -(-size // block)  # blocks per side, the last one cut at the edge
    cells = torch.randint(0, classes, (batch, side, side), generator=g)
    return cells.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :size, :size]


def synthetic_batch(run: Run, batch: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Images in [-1, 1] (B, 3, H, W) and their one-hot masks (B, K, H, W), on the run's device and
    in its memory layout, as the training loop hands them to the steps."""
    mcfg = run.model_config
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(batch, 3, mcfg.image_size, mcfg.image_size, generator=g) * 2 - 1
    labels = blocky_labels(batch, mcfg.num_classes, mcfg.image_size, seed=seed)
    one_hot = as_one_hot(labels, mcfg.num_classes, mcfg.ignore_index)
    return (real.to(run.device, memory_format=run.layout),
            one_hot.to(run.device).contiguous(memory_format=run.layout))


def write_synthetic_split(folder: Path, classes: int, size: int, count: int = 2) -> Path:
    """``count`` image/label pairs of ``classes`` classes under ``folder`` (images/, labels/): a dataset
    with the model's class count for :func:`setup_run`, which checks one before it builds a run."""
    from ..data.common import save_pair

    rng = np.random.default_rng(0)
    for index, labels in enumerate(blocky_labels(count, classes, size).numpy()):
        save_pair(folder, f"{index:03d}", rng.random((size, size, 3)), labels)
    return folder


def timing_run(preset: str, work_dir: str | Path, untrained_vgg: bool = False, **overrides: Any) -> Run:
    """A run of ``preset`` with ``overrides`` (TrainConfig keys), built by :func:`setup_run` in
    ``work_dir`` and never saved. VGG19 is used only if its weights are cached (no download: the
    stated L1 fallback otherwise), or, with ``untrained_vgg``, with random weights in its place: the
    perceptual term's cost without its download (the loss values mean nothing). The data is a
    synthetic split of the model's class count."""
    work_dir = Path(work_dir)
    cfg = resolve_config(preset, overrides={"vgg_download": False, "progress": False, **overrides,
                                            "out_dir": str(work_dir / "run")})
    mcfg = cfg.model_config()
    data = work_dir / f"data_{mcfg.num_classes}x{mcfg.image_size}"
    if not (data / "labels").is_dir():
        write_synthetic_split(data, mcfg.num_classes, max(mcfg.image_size, cfg.load_size or 0))
    run = setup_run(resolve_config(preset, overrides={**cfg.to_dict(), "data": str(data), "augment": False}))
    if untrained_vgg and run.perceptual is None and cfg.lambda_vgg > 0 and cfg.stage == "reconstruction":
        run.perceptual = PerceptualLoss(pretrained=False).to(run.device)
        run.l1_weight = cfg.lambda_l1  # the perceptual term is there: no L1 stands in for it
    return run


def perceptual_in_use(run: Run) -> str:
    """``run.perceptual_kind``, saying so when VGG19's weights are random (:func:`timing_run`)."""
    untrained = run.perceptual is not None and not run.perceptual.pretrained
    return run.perceptual_kind + (" with untrained weights (its cost only)" if untrained else "")


def compile_run(run: Run, **options: Any) -> None:
    """``torch.compile`` the generator step and the discriminator in place (``nn.Module.compile``):
    the steps call the same objects, and their state_dicts keep their keys."""
    run.g_step.compile(**options)
    run.discriminator.compile(**options)


class TrainingStep:
    """G step, EMA update and D step of ``run`` on one fixed batch; calling it runs one training step."""

    def __init__(self, run: Run, real: Tensor, one_hot: Tensor, step: int = 0) -> None:
        self.run, self.real, self.one_hot, self.step = run, real, one_hot, step
        noise_dim = run.generator.noise_dim
        self.noise = torch.randn(len(real), noise_dim, generator=torch.Generator().manual_seed(step)).to(run.device)

    @property
    def images(self) -> int:
        return len(self.real)

    def __call__(self) -> dict[str, Tensor]:
        run = self.run
        fake, losses = generator_step(run, self.real, self.one_hot, self.noise)
        update_ema(run.ema, run.generator, ema_decay_at(self.step, run.cfg.ema_decay, run.cfg.ema_warmup))
        losses["d_hinge"] = discriminator_step(run, self.real, self.one_hot, self.noise, fake)
        self.step += 1
        return losses


# -- memory ----------------------------------------------------------------------------------------
def _rss_peak_reset() -> bool:
    """Linux: reset this process's peak RSS (VmHWM), so the next reading is the peak since now."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_bytes(field: str) -> int | None:
    """VmRSS or VmHWM of this process in bytes (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class PeakMemory:
    """The peak memory of what runs between :meth:`reset` and :meth:`read`.

    CUDA: the caching allocator's peak of allocated and of reserved bytes. CPU: the process's peak
    resident set (Linux VmHWM, reset through /proc/self/clear_refs; elsewhere the peak of the whole
    process, ``getrusage``), and the resident set at reset, so ``read()["peak_gib"] - ["base_gib"]``
    is what the step added."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.base = device, 0

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.resettable = _rss_peak_reset()
            self.base = _rss_bytes("VmRSS") or 0

    def read(self) -> dict[str, float | str]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return {"peak_gib": torch.cuda.max_memory_allocated(self.device) / GIB,
                    "reserved_gib": torch.cuda.max_memory_reserved(self.device) / GIB,
                    "base_gib": self.base / GIB, "measure": "CUDA allocator peak (allocated; reserved beside it)"}
        peak = _rss_bytes("VmHWM") if self.resettable else None
        how = "peak RSS since reset (VmHWM)"
        if peak is None:
            scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
            peak, how = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "peak RSS of the process"
        # Linux counts resident pages per thread and folds them in lazily, so VmHWM can read a few pages
        # under the VmRSS read at reset; the peak since then is at least what was resident then
        return {"peak_gib": max(peak, self.base) / GIB, "base_gib": self.base / GIB, "measure": how}


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(step: TrainingStep, warmup: int = 2, repeats: int = 5, max_seconds: float = math.inf
              ) -> dict[str, Any]:
    """Run ``warmup`` untimed steps, then time up to ``repeats`` (stopping once ``max_seconds`` of
    timed steps have passed, after one at least); each step is timed to its last kernel.

    Returns the median step time, images per second at that median, every time, whether the last
    losses were finite, and the peak memory of the timed steps (:class:`PeakMemory`)."""
    device = step.run.device
    for _ in range(warmup):
        step()
    peak = PeakMemory(device)
    peak.reset()
    times: list[float] = []
    losses: dict[str, Tensor] = {}
    while len(times) < repeats and (not times or sum(times) < max_seconds):
        _synchronize(device)
        start = time.perf_counter()
        losses = step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"median_s": median, "images_per_s": step.images / median, "times_s": times,
            "finite": all(bool(torch.isfinite(v.detach()).all()) for v in losses.values()), **peak.read()}
