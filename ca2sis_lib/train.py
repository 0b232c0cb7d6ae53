"""One training loop for CA²-SIS and the SPADE family, from a laptop CPU to many GPUs.

    python -m ca2sis_lib.train --preset toy-ca2sis --out runs/toy --set steps=500
    torchrun --standalone --nproc_per_node=4 -m ca2sis_lib.train --preset paper --data DIR --out runs/paper

A plain loop, nanoGPT style: build data, models and optimisers; then for every step a generator
update (hinge GAN + feature matching + perceptual + L_att, spec §7) and a discriminator update,
with the learning rate held and then decayed linearly to zero (TTUR Adam, β = (0, 0.9)).

Everything a step does is a function of (seed, step, rank) and of the saved state, so a run that
is killed and resumed from its last checkpoint reaches exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import json
import math
import os
import random
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
import yaml
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from .checkpoint_io import check_same_config, load_checkpoint, save_atomic, tensor_digest
from .losses import feature_matching_loss, hinge_d_loss, hinge_g_loss, make_perceptual_loss
from .masks import as_one_hot
from .models import CA2SIS, CA2SISConfig
from .models.discriminator import MultiscaleDiscriminator

FAMILIES = ("ca2sis", "sean")
STAGES = ("reconstruction", "mapping")


@dataclass
class TrainConfig:
    family: str = "ca2sis"  # "ca2sis" (cross-attention) or "sean" (SPADE family with per-class styles)
    model_preset: str = "tiny"  # preset of the model config: "tiny" or "paper"
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"num_classes": 19}
    stage: str = "reconstruction"  # "mapping": spec §5 second stage, only the mapping network learns
    pretrained: str = ""  # generator to start from (mapping stage): a checkpoint, a shipped file or name
    data: str = "toy"  # "toy" (procedural, generated on the fly) or a folder with images/ and labels/
    toy_samples: int = 4000  # size of the toy training split
    load_size: int | None = None  # folder data: resize the shorter side to this, then crop image_size
    augment: bool = True  # folder data: random crop and horizontal flip (the authors' recipe)
    data_seed: int = 0
    batch_size: int = 8  # per process
    steps: int = 2000
    decay_start: int | None = None  # linear decay to 0 from this step on; None = constant lr
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.9)
    lambda_gan: float = 1.0
    lambda_fm: float = 10.0
    lambda_vgg: float = 10.0  # replaced by an L1 term of the same weight when VGG19 weights are missing
    lambda_l1: float = 0.0  # L1 reconstruction: a documented deviation for weight-free training
    lambda_attn: float = 1.0  # L_att; ignored by the SPADE family
    attn_pos_weight_max: float = 0.0  # > 0: class-balanced L_att (a documented deviation; 0 = the authors')
    lambda_diversity: float = 0.0  # mapping stage: -mean|G(z1) - sg(G(z2))| (spec §5)
    vgg_download: bool = False  # allow torchvision to download VGG19 (Colab); never in tests
    regenerate_fake_for_d: bool = True  # the authors regenerate the fake for the D step
    ema_decay: float = 0.0  # 0 = no EMA generator
    ema_warmup: bool = False  # decay min(ema_decay, (1 + t) / (10 + t)) at step t: a short run's EMA forgets the init
    amp: str = "none"  # "none", "bf16" (CUDA or CPU) or "fp16" (CUDA, with a grad scaler)
    channels_last: bool = False  # NHWC layout: same maths, faster grouped convs on CPUs (benchmarks/bench.py)
    device: str = "auto"
    seed: int = 0
    out_dir: str = "runs/default"
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200
    num_workers: int = 0
    max_steps_this_run: int | None = None  # stop after this many steps (a session budget); resumable
    progress: bool = True

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; choose from {FAMILIES}")
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; choose from {STAGES}")
        if self.stage == "mapping" and (self.family != "ca2sis" or not self.pretrained):
            raise ValueError("the mapping stage needs family='ca2sis' and a pretrained generator checkpoint")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp must be 'none', 'bf16' or 'fp16', got {self.amp!r}")
        self.betas = tuple(self.betas)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config keys {unknown}; valid keys: {sorted(known)}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _as_type_of(hints[k], k, v) for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data


def _as_type_of(hint: Any, key: str, value: Any) -> Any:
    """Give a value the type its key is annotated with (``int``, ``float``, ``bool``, or one of them
    or None). YAML (1.1) reads ``8e-4`` and ``1e5`` as strings, so ``--set lr_g=8e-4`` would
    otherwise reach Adam as text."""
    kinds = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    if value is None and type(None) in typing.get_args(hint):
        return None
    if len(kinds) != 1 or kinds[0] not in (bool, int, float):
        return value
    kind = kinds[0]
    if kind is bool or isinstance(value, bool):
        if kind is not bool or not isinstance(value, bool):
            raise ValueError(f"training config key {key!r} expects {'true or false' if kind is bool else 'a number'}, "
                             f"got {value!r}")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"training config key {key!r} expects a number, got {value!r}") from None
    if kind is float:
        return number
    if not number.is_integer():
        raise ValueError(f"training config key {key!r} expects a whole number, got {value!r}")
    return int(number)

PRESETS: dict[str, dict[str, Any]] = {
    # the authors' recipe (spec §7): batch 2, 50 epochs constant + 50 linear decay on 28k images
    "paper": dict(model_preset="paper", batch_size=2, load_size=286, steps=1_400_000, decay_start=700_000,
                  ema_decay=0.0, lambda_vgg=10.0, vgg_download=True, sample_every=5000, checkpoint_every=2500),
    # the shipped toy checkpoints: CPU-sized, with the L1 deviation so no VGG weights are needed and a
    # light GAN term (0.125: SSIM rewards the mean texture, the GAN asks for one of its own); the
    # CA²-SIS one trains L_att class-balanced and with weight 5 (stated deviations, see the README)
    "toy-ca2sis": dict(model_preset="tiny", batch_size=8, steps=2000, decay_start=1300, lr_g=4e-4, lr_d=8e-4,
                       lambda_gan=0.125, lambda_vgg=0.0, lambda_l1=20.0, lambda_fm=2.0, ema_decay=0.995,
                       regenerate_fake_for_d=False, lambda_attn=5.0, attn_pos_weight_max=200.0, channels_last=True),
    "toy-sean": dict(family="sean", model_preset="tiny", batch_size=8, steps=2000, decay_start=1300, lr_g=4e-4,
                     lr_d=8e-4, lambda_gan=0.125, lambda_vgg=0.0, lambda_l1=20.0, lambda_fm=2.0, ema_decay=0.995,
                     regenerate_fake_for_d=False, channels_last=True),
    # spec §5, second stage on the shipped toy generator: only the mapping network learns (GAN + L_att
    # + a diversity term so that different z give different styles)
    "toy-mapping": dict(stage="mapping", pretrained="ca2sis_tiny_toy", model_preset="tiny",
                        batch_size=8, steps=400, decay_start=250, lr_g=2e-4, lr_d=8e-4, lambda_vgg=0.0,
                        lambda_l1=0.0, lambda_fm=0.0, lambda_diversity=1.0, ema_decay=0.99,
                        regenerate_fake_for_d=False, attn_pos_weight_max=200.0),
    # a few steps, for tests and the CI notebooks
    "smoke": dict(model_preset="tiny", batch_size=2, steps=4, toy_samples=16, lambda_vgg=0.0, lambda_l1=10.0,
                  log_every=1, sample_every=2, checkpoint_every=2, progress=False),
}


def resolve_config(preset: str = "toy-ca2sis", yaml_path: str | None = None,
                   overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Preset, then a YAML file, then command-line overrides (later wins)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    data: dict[str, Any] = dict(PRESETS[preset])
    if yaml_path:
        data.update(yaml.safe_load(Path(yaml_path).read_text()) or {})
    data.update(overrides or {})
    return TrainConfig.from_dict(data)


# -- models ------------------------------------------------------------------------------------
def model_config(cfg: TrainConfig):
    if cfg.family == "ca2sis":
        presets = {"tiny": CA2SISConfig.tiny, "paper": CA2SISConfig.paper}
    else:
        from .models.sean import SEANConfig

        presets = {"tiny": SEANConfig.tiny, "paper": SEANConfig.paper}
    if cfg.model_preset not in presets:
        raise ValueError(f"unknown model preset {cfg.model_preset!r}; choose from {sorted(presets)}")
    return presets[cfg.model_preset](**cfg.model_overrides)


def build_generator(family: str, config) -> nn.Module:
    if family == "ca2sis":
        return CA2SIS(config)
    from .models.sean import SEANGenerator

    return SEANGenerator(config)


def generator_from_config_dict(family: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild an (untrained) generator from a saved config dict, as checkpoints store it."""
    if family == "ca2sis":
        return build_generator(family, CA2SISConfig.from_dict(config))
    from .models.sean import SEANConfig

    return build_generator(family, SEANConfig.from_dict(config))


class GeneratorStep(nn.Module):
    """What one generator forward means in each stage; wrapping it lets DDP see a single call.

    ``attn_pos_weight_max > 0`` makes the model's L_att class-balanced
    (:func:`~ca2sis_lib.models.ca2sis.attention_loss`); the SPADE family has no L_att.
    """

    def __init__(self, model: nn.Module, stage: str, attn_pos_weight_max: float = 0.0) -> None:
        super().__init__()
        self.model, self.stage = model, stage
        self.loss_options = {"attn_pos_weight_max": attn_pos_weight_max} if hasattr(model, "embed_mask") else {}

    def forward(self, image: Tensor, one_hot: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if self.stage == "reconstruction":
            out = self.model(image, one_hot, **self.loss_options)
            return out.image, out.attn_loss
        present = one_hot.flatten(2).amax(-1) > 0  # (B, K): absent classes get zero codes (spec §5)
        styles = self.model.styles_from_noise(noise, present)
        out = self.model.decode(self.model.embed_mask(one_hot), styles, attn_target=one_hot, **self.loss_options)
        return out.image, out.attn_loss


# -- data --------------------------------------------------------------------------------------
def build_dataset(cfg: TrainConfig, num_classes: int, image_size: int) -> Dataset:
    if cfg.data == "toy":
        from .data.toy import ToyFaces

        dataset = ToyFaces(num_samples=cfg.toy_samples, size=image_size, seed=cfg.data_seed, split="train")
    else:  # resize the shorter side to load_size, crop image_size (random when augmenting), flip
        from .data.common import read_dataset_info
        from .data.folder import SegmentationFolder

        declared = (read_dataset_info(cfg.data) or {}).get("num_classes")
        dataset = SegmentationFolder(cfg.data, num_classes=declared or num_classes, resize=cfg.load_size or image_size,
                                     crop=image_size, random_crop=cfg.augment, flip_p=0.5 if cfg.augment else 0.0)
    if len(dataset) == 0:
        raise ValueError(f"the dataset {cfg.data!r} is empty; check the path and its images/ and labels/ folders")
    if getattr(dataset, "num_classes", num_classes) != num_classes:
        raise ValueError(
            f"the dataset has {dataset.num_classes} classes but the model config expects {num_classes}; "
            f"set model_overrides.num_classes={dataset.num_classes} (or use a matching dataset)"
        )
    return dataset


class StepBatchSampler(Sampler[list[int]]):
    """Batches as a pure function of (seed, step, rank): epoch e uses permutation seed + e, and the
    global batch of each step is split between ranks. Starting at any step resumes exactly."""

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int, end_step: int,
                 rank: int = 0, world: int = 1) -> None:
        self.size, self.batch, self.seed = size, batch_size, seed
        self.start, self.end, self.rank, self.world = start_step, end_step, rank, world
        self.per_epoch = size // (batch_size * world)
        if self.per_epoch == 0:
            raise ValueError(f"dataset of {size} samples is smaller than one global batch of {batch_size * world}")

    def indices(self, step: int) -> list[int]:
        epoch, offset = divmod(step, self.per_epoch)
        perm = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        start = (offset * self.world + self.rank) * self.batch
        return perm[start : start + self.batch].tolist()

    def __iter__(self):
        for step in range(self.start, self.end):
            yield self.indices(step)

    def __len__(self) -> int:
        return self.end - self.start


# -- distributed helpers -------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_type: str) -> Dist:
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return Dist()
    backend = "nccl" if device_type == "cuda" else "gloo"
    torch_dist.init_process_group(backend=backend)
    return Dist(torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def average_across_ranks(values: dict[str, float], dist: Dist, device: torch.device) -> dict[str, float]:
    if not dist.enabled:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    torch_dist.all_reduce(t)
    return dict(zip(values, (t / dist.world).tolist()))


# -- state -------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1].numpy().astype(np.uint32), *np_state[2:]))
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def split_fake_real(pred: list[list[Tensor]], n: int) -> tuple[list[list[Tensor]], list[list[Tensor]]]:
    """D saw cat([fake, real]) as one batch; split every output of every scale back."""
    return [[t[:n] for t in scale] for scale in pred], [[t[n:] for t in scale] for scale in pred]


def lr_factor(step: int, cfg: TrainConfig) -> float:
    if cfg.decay_start is None or step < cfg.decay_start:
        return 1.0
    return max(0.0, (cfg.steps - step) / max(1, cfg.steps - cfg.decay_start))


def colour_labels(label: Tensor, palette) -> Tensor:
    """(B, H, W) ids -> (B, 3, H, W) in [-1, 1], for sample grids."""
    table = torch.tensor(np.asarray(palette, dtype=np.float32) / 127.5 - 1.0)
    return table[label.clamp(0, len(table) - 1).cpu()].permute(0, 3, 1, 2)


# -- the loop ------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> dict[str, Any]:
    from tqdm.auto import tqdm

    device_type = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    dist = setup_distributed(device_type.split(":")[0])
    device = torch.device(f"cuda:{dist.local_rank}" if device_type == "cuda" else device_type)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    out_dir = Path(cfg.out_dir)
    ckpt_path = out_dir / "checkpoint.pt"

    mcfg = model_config(cfg)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    generator = build_generator(cfg.family, mcfg).to(device, memory_format=layout)
    discriminator = MultiscaleDiscriminator(mcfg.num_classes).to(device, memory_format=layout)
    dataset = build_dataset(cfg, mcfg.num_classes, mcfg.image_size)
    palette = getattr(dataset, "palette", None)

    if cfg.stage == "mapping":  # spec §5: load the reconstruction generator, train only the mapping net
        from .shipped import load_model  # a shipped name or file, a training checkpoint, official:<path>

        source = load_model(cfg.pretrained, map_location=str(device))
        check_same_config(source.config.to_dict(), mcfg.to_dict())
        # everything but the mapping network, which starts fresh (seeded) even if the source has one
        generator.load_state_dict({k: v for k, v in source.state_dict().items() if not k.startswith("mapping.")},
                                  strict=False)
        trainable = list(generator.mapping.parameters())
    elif cfg.family == "ca2sis":
        trainable = [p for n, p in generator.named_parameters() if not n.startswith("mapping.")]
    else:
        trainable = list(generator.parameters())
    for p in generator.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)

    opt_g = torch.optim.Adam(trainable, lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    ema = copy.deepcopy(generator).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)

    start_step = 0
    if ckpt_path.exists():  # resume
        state = load_checkpoint(ckpt_path, map_location=device)
        check_same_config(state["model_config"], mcfg.to_dict())
        check_same_config({k: v for k, v in state["train_config"].items() if k in _RESUME_KEYS},
                          {k: v for k, v in cfg.to_dict().items() if k in _RESUME_KEYS}, what="training")
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        start_step = int(state["step"])
        if state.get("world_size", 1) != dist.world:  # batches are sharded per rank: keep the same count
            raise ValueError(f"checkpoint was written by {state.get('world_size', 1)} process(es), this run has "
                             f"{dist.world}; resume with the same --nproc_per_node (or start a new run)")

    step_fn = GeneratorStep(generator, cfg.stage, cfg.attn_pos_weight_max)
    g_model, d_model = step_fn, discriminator
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        g_model = nn.parallel.DistributedDataParallel(step_fn, device_ids=ids)
        d_model = nn.parallel.DistributedDataParallel(discriminator, device_ids=ids)

    perceptual = None
    if cfg.lambda_vgg > 0:
        perceptual = make_perceptual_loss(cfg.vgg_download)
        perceptual = perceptual.to(device) if perceptual is not None else None
    l1_weight = cfg.lambda_l1 + (cfg.lambda_vgg if perceptual is None and cfg.stage == "reconstruction" else 0)

    end_step = cfg.steps if cfg.max_steps_this_run is None else min(cfg.steps, start_step + cfg.max_steps_this_run)
    sampler = StepBatchSampler(len(dataset), cfg.batch_size, cfg.seed, start_step, end_step, dist.rank, dist.world)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers)

    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        resolved = {"train": cfg.to_dict(), "model": mcfg.to_dict(), "family": cfg.family}
        (out_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    log_path = out_dir / "log.csv"
    if dist.main and start_step and log_path.exists():  # drop rows logged after the checkpoint we resume
        rows = log_path.read_text().splitlines(keepends=True)
        log_path.write_text("".join(rows[:1] + [r for r in rows[1:] if int(r.split(",", 1)[0]) <= start_step]))

    def save(step: int) -> None:
        if not dist.main:
            return
        save_atomic({
            "family": cfg.family, "step": step, "model_config": mcfg.to_dict(), "train_config": cfg.to_dict(),
            "generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "scaler": scaler.state_dict(),
            "rng": rng_state(), "world_size": dist.world,
        }, ckpt_path)

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    bar = tqdm(total=end_step - start_step, initial=0, disable=not (cfg.progress and dist.main), desc="train")
    history: list[dict[str, float]] = []
    start_time, step = time.time(), start_step
    for step, batch in zip(range(start_step, end_step), loader):
        torch.manual_seed(cfg.seed * 1_000_003 + step * 1009 + dist.rank)  # noise of this step, on this rank
        for group in opt_g.param_groups:
            group["lr"] = cfg.lr_g * lr_factor(step, cfg)
        for group in opt_d.param_groups:
            group["lr"] = cfg.lr_d * lr_factor(step, cfg)
        real = batch["image"].to(device, memory_format=layout)
        one_hot = as_one_hot(batch["label"].to(device), mcfg.num_classes, getattr(mcfg, "ignore_index", None))
        one_hot = one_hot.contiguous(memory_format=layout)
        noise = torch.randn(real.shape[0], getattr(mcfg, "noise_dim", 1), device=device)

        # ---- generator update: D is frozen and called unwrapped (no DDP sync for it here)
        discriminator.requires_grad_(False)
        with autocast():
            fake, attn_loss = g_model(real, one_hot, noise)
            pred = discriminator(torch.cat([one_hot, one_hot]), torch.cat([fake, real]))  # one batch (§7)
            pred_fake, pred_real = split_fake_real(pred, len(real))
            losses = {"g_gan": hinge_g_loss(pred_fake) * cfg.lambda_gan}
            if cfg.stage == "reconstruction":
                if cfg.lambda_fm:
                    losses["g_fm"] = feature_matching_loss(pred_real, pred_fake) * cfg.lambda_fm
                if perceptual is not None:
                    losses["g_vgg"] = perceptual(fake.float(), real) * cfg.lambda_vgg
                if l1_weight:
                    losses["g_l1"] = F.l1_loss(fake.float(), real) * l1_weight
            if attn_loss is not None and cfg.lambda_attn:
                losses["g_attn"] = attn_loss * cfg.lambda_attn
            if cfg.stage == "mapping" and cfg.lambda_diversity:
                other, _ = g_model(real, one_hot, torch.randn_like(noise))
                losses["g_diversity"] = -(fake - other.detach()).abs().mean() * cfg.lambda_diversity
            g_total = sum(losses.values())
        opt_g.zero_grad(set_to_none=True)
        scaler.scale(g_total).backward()
        scaler.step(opt_g)
        if ema is not None:
            decay = min(cfg.ema_decay, (1 + step) / (10 + step)) if cfg.ema_warmup else cfg.ema_decay
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), generator.parameters()):
                    p_ema.lerp_(p, 1 - decay)
                for b_ema, b in zip(ema.buffers(), generator.buffers()):
                    b_ema.copy_(b)

        # ---- discriminator update
        discriminator.requires_grad_(True)
        with torch.no_grad(), autocast():
            fake_d = step_fn(real, one_hot, noise)[0] if cfg.regenerate_fake_for_d else fake.detach()
        with autocast():
            pred_fake, pred_real = split_fake_real(d_model(torch.cat([one_hot, one_hot]), torch.cat([fake_d, real])),
                                                   len(real))
            d_loss = hinge_d_loss(pred_real, pred_fake)
        opt_d.zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
        scaler.step(opt_d)
        scaler.update()

        record = {k: float(v.detach()) for k, v in losses.items()} | {"g_total": float(g_total.detach()),
                                                                        "d_hinge": float(d_loss.detach())}
        record = average_across_ranks(record, dist, device)
        bad = {k: v for k, v in record.items() if not math.isfinite(v)}
        if bad:
            raise FloatingPointError(
                f"non-finite loss at step {step}: {bad}. The last good checkpoint is kept at {ckpt_path}; "
                "lower the learning rate or switch amp off, then resume."
            )
        record = {"step": step + 1, "lr_g": opt_g.param_groups[0]["lr"]} | record
        history.append(record)
        bar.update(1)
        if dist.main:
            if (step + 1) % cfg.log_every == 0 or step + 1 == end_step:
                _append_csv(log_path, history[-1])
                bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k in ("g_total", "d_hinge", "g_attn")})
            if palette is not None and ((step + 1) % cfg.sample_every == 0 or step + 1 == end_step):
                _save_grid(out_dir / "samples" / f"step_{step + 1:07d}.png", batch["label"], real, fake, palette)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == end_step:
            save(step + 1)
    bar.close()

    digest = tensor_digest(generator.state_dict())
    digests = [digest]
    if dist.enabled:
        digests = [None] * dist.world
        torch_dist.all_gather_object(digests, digest)
    summary = {
        "steps_done": end_step - start_step, "step": end_step, "finished": end_step >= cfg.steps,
        "seconds": time.time() - start_time, "world_size": dist.world, "generator_digests": digests,
        "checkpoint": str(ckpt_path), "last": history[-1] if history else {},
        "perceptual": "vgg19" if perceptual is not None else ("l1 (VGG19 weights unavailable)" if cfg.lambda_vgg
                                                              else "off"),
    }
    if dist.main:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if dist.enabled:
        torch_dist.barrier()
        torch_dist.destroy_process_group()
    return summary


# training settings that must not change when a run is resumed
_RESUME_KEYS = {"family", "model_preset", "model_overrides", "stage", "data", "toy_samples", "data_seed",
                "batch_size", "steps", "decay_start", "seed"}


def _append_csv(path: Path, row: dict[str, float]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _save_grid(path: Path, label: Tensor, real: Tensor, fake: Tensor, palette) -> None:
    from torchvision.utils import save_image

    n = min(4, len(real))
    rows = torch.cat([colour_labels(label[:n], palette), real[:n].cpu().float(), fake[:n].detach().cpu().float()])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image((rows + 1) / 2, path, nrow=n)


def load_generator(path: str | Path, use_ema: bool = True, map_location: str = "cpu") -> nn.Module:
    """Rebuild a trained generator (family and config come from the checkpoint)."""
    state = load_checkpoint(path, map_location=map_location)
    model = generator_from_config_dict(state["family"], state["model_config"])
    weights = state["ema"] if use_ema and state.get("ema") is not None else state["generator"]
    model.load_state_dict(weights)
    return model.eval()


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        parsed = yaml.safe_load(value)
        if "." in key:  # model_overrides.num_classes=19
            outer, inner = key.split(".", 1)
            out.setdefault(outer, {})[inner] = parsed
        else:
            out[key] = parsed
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="toy-ca2sis", help=f"one of {sorted(PRESETS)}")
    parser.add_argument("--config", help="YAML file of TrainConfig keys (applied after the preset)")
    parser.add_argument("--data", help="'toy' or a folder with images/ and labels/")
    parser.add_argument("--out", help="output folder (checkpoint.pt, log.csv, samples/, config.yaml)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override any config key")
    args = parser.parse_args(argv)
    overrides = _parse_overrides(args.set)
    if args.data:
        overrides["data"] = args.data
    if args.out:
        overrides["out_dir"] = args.out
    try:
        cfg = resolve_config(args.preset, args.config, overrides)
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "generator_digests"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
