"""A training run, set up once: devices, models, optimisers, EMA, data, resume, checkpoints, the mapping stage.

Everything a step does is a function of (seed, step, rank) and of the saved state — the batch
(:class:`~ca2sis_lib.training.data.StepBatchSampler`), each item's augmentation (drawn from its own
generator, :class:`~ca2sis_lib.training.data.StepItems`, never from the global one, whatever the
loader workers), the noise (seeded per step and rank) and the random-number state stored in each
checkpoint — so a run that is killed and resumed from its last checkpoint, with any number of
loader workers, reaches exactly the weights of an uninterrupted run, as long as the training files
are the same (the checkpoint records their list; :func:`~.resume.check_same_data`).
"""

from __future__ import annotations

import contextlib
import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import yaml
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..checkpoint_io import load_checkpoint, remove_partial_writes, require_keys, require_same_config, save_atomic
from ..losses import PerceptualLoss, make_perceptual_loss, principal_axes
from ..masks import classes_present
from ..models.discriminator import MultiscaleDiscriminator
from ..models.factory import MAPPING_PREFIX, build_generator, split_mapping
from .config import TrainConfig
from .data import StepBatchSampler, StepItems, build_dataset, data_files
from .lock import RunLock
from .processes import Dist, setup_distributed
from .resume import check_resume, check_same_data, first_part, next_part
from .rng import rng_state, set_rng_state
from .stage import GeneratorStep

TRAINING_STATE = ("step", "model_config", "train_config", "generator", "discriminator", "opt_g", "opt_d", "scaler",
                  "rng")  # what Run.save writes and Run.resume reads


class RealCodes(NamedTuple):
    """L_code's reference (mapping stage): real training images' style codes and their principal axes."""
    codes: Tensor  # (N, K, D), zero where a class is absent
    present: Tensor  # (N, K), 1.0 where the image shows the class
    mean: Tensor  # (K·D,)
    axes: Tensor  # (K·D, r): the r directions in which real codes vary most


@dataclass
class Run:
    cfg: TrainConfig
    model_config: Any  # CA2SISConfig or SEANConfig
    dist: Dist
    device: torch.device
    generator: nn.Module
    discriminator: MultiscaleDiscriminator
    ema: nn.Module | None  # exponential moving average of the generator (what gets exported)
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    g_step: GeneratorStep  # one generator forward of this stage
    g_model: nn.Module  # g_step, wrapped in DDP on many processes
    d_model: nn.Module  # the discriminator, likewise
    perceptual: PerceptualLoss | None
    l1_weight: float  # λ_L1, plus λ_VGG when VGG19 is unavailable (the stated fallback)
    dataset: Dataset
    lock: RunLock | None = None  # the run folder's lock (main process only), released by close()
    start_step: int = 0
    saved_step: int | None = None  # step of the checkpoint on disk (None: none written yet)
    parts: list[dict[str, Any]] = field(default_factory=first_part)  # what each part of the run ran with
    history: list[dict[str, float]] = field(default_factory=list)  # one row of losses per step
    bar: Any = None  # the progress bar (tqdm) of this process
    real_codes: RealCodes | None = None  # mapping stage: L_code's reference

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the run folder (also after an error)."""
        if self.lock is not None:
            self.lock.release()

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.out_dir)

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    @property
    def end_step(self) -> int:
        budget = self.cfg.max_steps_this_run
        return self.cfg.steps if budget is None else min(self.cfg.steps, self.start_step + budget)

    @property
    def layout(self) -> torch.memory_format:
        return torch.channels_last if self.cfg.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.cfg.amp)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    @property
    def perceptual_kind(self) -> str:
        """The perceptual term in use: VGG19, its stated L1 fallback, or none."""
        return "vgg19" if self.perceptual is not None else ("l1 (VGG19 weights unavailable)" if self.cfg.lambda_vgg
                                                            else "off")

    def batches(self) -> DataLoader:
        sampler = StepBatchSampler(len(self.dataset), self.cfg.batch_size, self.cfg.seed, self.start_step,
                                   self.end_step, self.dist.rank, self.dist.world)
        # the loader's own generator: creating its iterator must not draw from the global one (restored on resume)
        return DataLoader(StepItems(self.dataset, self.cfg.seed), batch_sampler=sampler,
                          num_workers=self.cfg.num_workers, generator=torch.Generator().manual_seed(self.cfg.seed))

    def save(self, step: int) -> None:
        """Write the whole run state atomically (a kill mid-write keeps the previous checkpoint)."""
        self.parts[-1]["end_step"] = self.saved_step = step
        if not self.dist.is_main:
            return
        save_atomic({
            "family": self.cfg.family, "step": step, "model_config": self.model_config.to_dict(),
            "train_config": self.cfg.to_dict(), "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": rng_state(), "world_size": self.dist.world, "parts": self.parts,
            "perceptual": self.perceptual_kind, "data_files": data_files(self.dataset),
        }, self.checkpoint_path)
        self.write_config_yaml()

    def write_config_yaml(self) -> None:
        """config.yaml: the settings now, the model config, and what each part of the run ran with."""
        record = {"train": self.cfg.to_dict(), "model": self.model_config.to_dict(), "family": self.cfg.family,
                  "parts": self.parts}
        (self.out_dir / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))

    def resume(self) -> None:
        """Load the checkpoint in ``out_dir``, if any, after checking it continues this run."""
        if not self.checkpoint_path.exists():
            return
        state = load_checkpoint(self.checkpoint_path, map_location=self.device)
        require_keys(state, TRAINING_STATE, self.checkpoint_path, "a training checkpoint")
        check_resume(state, self.cfg, self.model_config.to_dict(), self.dist.world, self.perceptual_kind,
                     self.checkpoint_path)
        data_change = check_same_data(state.get("data_files"), data_files(self.dataset),
                                      self.cfg.allow_data_change, self.checkpoint_path)
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.start_step = self.saved_step = int(state["step"])
        self.parts = next_part(state, self.cfg)
        if data_change:
            self.parts[-1]["data_change"] = data_change


def _trainable_parameters(cfg: TrainConfig, generator: nn.Module, device: torch.device) -> list[nn.Parameter]:
    """Reconstruction trains everything but CA²-SIS's mapping network; the mapping stage
    (docs/architecture.md#mapping-network) loads a trained generator and trains the mapping network alone."""
    if cfg.stage == "mapping":
        from ..loading import load_model  # a shipped name or file, a training checkpoint, official:<path>

        source = load_model(cfg.pretrained, map_location=str(device))
        require_same_config(source.config.to_dict(), generator.config.to_dict())
        # everything but the mapping network, which starts fresh (seeded) even if the source has one
        generator.load_state_dict(split_mapping(source.state_dict())[0], strict=False)
        return list(generator.mapping.parameters())
    return [p for n, p in generator.named_parameters() if not n.startswith(MAPPING_PREFIX)]


@torch.no_grad()
def encode_real_codes(generator: nn.Module, dataset: Dataset, count: int, axes: int,
                      device: torch.device, batch_size: int = 64) -> RealCodes:
    """The frozen style encoder's codes of the first ``count`` training images, with their mean and
    ``axes`` principal axes. A pure function of the data and the generator, so a resumed run gets
    the same; the random state is left as it was."""
    count = min(count, len(dataset))
    codes, present = [], []
    with torch.random.fork_rng(devices=[]):  # a folder's random crops must not move the run's random state
        for start in range(0, count, batch_size):
            items = [dataset[i] for i in range(start, min(count, start + batch_size))]
            image = torch.stack([item["image"] for item in items]).to(device)  # (b, 3, H, W)
            one_hot = generator.prepare_mask(torch.stack([item["label"] for item in items]).to(device))  # (b, K, H, W)
            codes.append(generator.encode_style(image, one_hot))  # (b, K, D)
            present.append(classes_present(one_hot))  # (b, K)
    all_codes = torch.cat(codes)
    return RealCodes(all_codes, torch.cat(present).float(), *principal_axes(all_codes, axes))


def setup_run(cfg: TrainConfig) -> Run:
    """Take the run folder, build everything a run needs, and resume from ``out_dir/checkpoint.pt``
    when it exists. Close the run (``with run:`` or :meth:`Run.close`) to release the folder."""
    device_type = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    dist = setup_distributed(device_type.split(":")[0])
    device = torch.device(f"cuda:{dist.local_rank}" if device_type == "cuda" else device_type)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    lock = take_run_folder(Path(cfg.out_dir)) if dist.is_main else None
    try:
        run = _build_run(cfg, dist, device)
        run.lock = lock
        run.resume()
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return run


def take_run_folder(out_dir: Path) -> RunLock:
    """Lock the run folder (or stop: another run holds it, or it holds a config.yaml a run did not write)
    and delete leftovers of interrupted saves."""
    lock = RunLock(out_dir).acquire()
    try:
        refuse_foreign_config(out_dir / "config.yaml")
    except FileExistsError:
        lock.release()
        raise
    for path in remove_partial_writes(out_dir, "checkpoint.pt", older_than=lock.acquired_at):
        print(f"note: removed {path.name}, a checkpoint write that an earlier run did not finish", file=sys.stderr)
    return lock


RUN_CONFIG_SECTIONS = ("train", "model", "family")  # what Run.write_config_yaml writes, at the top level


def refuse_foreign_config(path: Path) -> None:
    """A run writes its resolved settings to ``out_dir/config.yaml``: refuse, untouched, one it did not
    write (a user's own config kept in the output folder, say), which the run would overwrite."""
    if not path.is_file():
        return
    try:
        written = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        written = None
    if not (isinstance(written, dict) and all(key in written for key in RUN_CONFIG_SECTIONS)):
        raise FileExistsError(
            f"{path} was not written by a training run (a run's has the sections {', '.join(RUN_CONFIG_SECTIONS)}) "
            "and the run would overwrite it with its resolved settings; move it away (a --config file may live "
            "anywhere) or choose another --out (out_dir)")


def _build_run(cfg: TrainConfig, dist: Dist, device: torch.device) -> Run:
    """Models, EMA, optimisers, losses and data of a fresh run (seeded: identical on every rank)."""
    mcfg = cfg.model_config()
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    generator = build_generator(cfg.family, mcfg).to(device, memory_format=layout)
    discriminator = MultiscaleDiscriminator(mcfg.num_classes).to(device, memory_format=layout)
    dataset = build_dataset(cfg, mcfg.num_classes, mcfg.image_size, mcfg.ignore_index)

    trainable = _trainable_parameters(cfg, generator, device)
    generator.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    ema = copy.deepcopy(generator).eval().requires_grad_(False) if cfg.ema_decay > 0 else None

    g_step = GeneratorStep(generator, cfg.stage)
    g_model, d_model = g_step, discriminator
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        g_model = nn.parallel.DistributedDataParallel(g_step, device_ids=ids)
        d_model = nn.parallel.DistributedDataParallel(discriminator, device_ids=ids)

    perceptual = make_perceptual_loss(cfg.vgg_download) if cfg.lambda_vgg > 0 else None
    perceptual = perceptual.to(device) if perceptual is not None else None
    l1_weight = cfg.lambda_l1 + (cfg.lambda_vgg if perceptual is None and cfg.stage == "reconstruction" else 0)

    real_codes = None
    if cfg.stage == "mapping" and cfg.lambda_code:
        real_codes = encode_real_codes(generator, dataset, cfg.code_images, cfg.code_axes, device)

    return Run(
        cfg=cfg, model_config=mcfg, dist=dist, device=device, generator=generator, discriminator=discriminator,
        # foreach: one call per Adam operation for all tensors instead of one per tensor (the same
        # arithmetic, bit for bit, on CPU; CUDA's default already)
        ema=ema, opt_g=torch.optim.Adam(trainable, lr=cfg.lr_g, betas=cfg.betas, foreach=True),
        opt_d=torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=cfg.betas, foreach=True),
        scaler=torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16"), g_step=g_step, g_model=g_model,
        d_model=d_model, perceptual=perceptual, l1_weight=l1_weight, dataset=dataset, real_codes=real_codes,
    )
