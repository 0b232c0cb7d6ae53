"""One training step in named parts, as the loop in :mod:`ca2sis_lib.train` and the benchmarks call them.

    generator_step      the stage's generator loss, then Adam:
                        reconstruction_losses  L_G = λ_GAN·L_GAN + λ_FM·L_FM + λ_VGG·L_VGG (or λ_L1·L1) + λ_att·L_att
                        mapping_losses         L_map = λ_GAN·L_GAN + λ_att·L_att + λ_code·L_code + λ_div·L_div
    update_ema          θ_EMA ← decay·θ_EMA + (1 − decay)·θ   (decay from schedule.ema_decay_at: optional warm-up)
    discriminator_step  L_D = hinge(D(real)) + hinge(−D(fake)), then Adam

The generator and the discriminator see fake and real in one batch (``torch.cat([fake, real])``):
one forward for both, as the authors do (docs/architecture.md, discriminator and training recipe).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..contract import checks_disabled
from ..losses import (
    DiscriminatorOutput,
    attention_loss,
    code_distribution_loss,
    feature_matching_loss,
    hinge_d_loss,
    hinge_g_loss,
)

if TYPE_CHECKING:
    from .run import Run


def split_fake_real(pred: list[list[Tensor]], n: int) -> tuple[list[list[Tensor]], list[list[Tensor]]]:
    """D saw cat([fake, real]) as one batch; split every output of every scale back."""
    return [[t[:n] for t in scale] for scale in pred], [[t[n:] for t in scale] for scale in pred]


def set_learning_rates(run: Run, factor: float) -> None:
    for group in run.opt_g.param_groups:
        group["lr"] = run.cfg.lr_g * factor
    for group in run.opt_d.param_groups:
        group["lr"] = run.cfg.lr_d * factor


def judge(run: Run, one_hot: Tensor, fake: Tensor, real: Tensor) -> tuple[DiscriminatorOutput, DiscriminatorOutput]:
    """D's outputs on the fake and the real batch (D frozen, called unwrapped: no DDP sync)."""
    with checks_disabled():  # D's inputs: G's own output and the batch G's call has just checked
        pred = run.discriminator(torch.cat([one_hot, one_hot]), torch.cat([fake, real]))  # one batch for both
    return split_fake_real(pred, len(real))


def reconstruction_losses(run: Run, real: Tensor, one_hot: Tensor, noise: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """The fake batch and every weighted term of the reconstruction stage's L_G
    (docs/architecture.md#discriminator-and-training-losses, (10)):

        L_G = λ_GAN·L_GAN + λ_FM·L_FM + λ_VGG·L_VGG + λ_att·L_att

    with λ_L1·L1 in place of (or beside) λ_VGG·L_VGG when VGG19 is unavailable (``run.l1_weight``).
    """
    cfg = run.cfg
    fake, logits, _ = run.g_model(real, one_hot, noise)  # (B, 3, H, W), per-layer (B, heads, K, h, w)
    pred_fake, pred_real = judge(run, one_hot, fake, real)
    losses = {"g_gan": hinge_g_loss(pred_fake) * cfg.lambda_gan}
    if cfg.lambda_fm:
        losses["g_fm"] = feature_matching_loss(pred_real, pred_fake) * cfg.lambda_fm
    if run.perceptual is not None:
        losses["g_vgg"] = run.perceptual(fake.float(), real) * cfg.lambda_vgg
    if run.l1_weight:
        losses["g_l1"] = F.l1_loss(fake.float(), real) * run.l1_weight
    if logits is not None and cfg.lambda_attn:  # the SPADE family has no attention
        losses["g_attn"] = attention_loss(logits, one_hot, cfg.attn_pos_weight_max) * cfg.lambda_attn
    return fake, losses


def mapping_losses(run: Run, real: Tensor, one_hot: Tensor, noise: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """The fake batch and every weighted term of the mapping stage's loss, styles from noise
    (docs/architecture.md#mapping-network, docs/training_recipes.md#the-mapping-network):

        L_map = λ_GAN·L_GAN + λ_att·L_att + λ_code·L_code + λ_div·L_div,   L_div = −mean|G(z₁) − sg(G(z₂))|
    """
    cfg = run.cfg
    code_noise = None
    if run.real_codes is not None:  # extra draws for L_code (the mapping network alone: cheap), one per real image
        draws = min(cfg.code_samples, len(run.real_codes.codes))
        code_noise = torch.randn(draws, noise.shape[1], device=noise.device)
    fake, logits, codes = run.g_model(real, one_hot, noise, code_noise)  # codes: (M, K, D) or None
    pred_fake, _ = judge(run, one_hot, fake, real)
    losses = {"g_gan": hinge_g_loss(pred_fake) * cfg.lambda_gan}
    if cfg.lambda_attn:
        losses["g_attn"] = attention_loss(logits, one_hot, cfg.attn_pos_weight_max) * cfg.lambda_attn
    if codes is not None:  # the mapping network's codes should be distributed like real images' codes
        ref = run.real_codes
        pick = torch.randperm(len(ref.codes), device=ref.codes.device)[:len(codes)]  # (M,) real images
        codes = codes * ref.present[pick, :, None]  # (M, K, D): each draw gets a real image's classes, as in use
        losses["g_code"] = code_distribution_loss(codes, ref.codes[pick], ref.mean, ref.axes) * cfg.lambda_code
    if cfg.lambda_diversity:  # different z must give different images
        with torch.no_grad():  # the second sample is a constant of the loss
            other = run.g_model(real, one_hot, torch.randn_like(noise))[0]
        losses["g_diversity"] = -(fake - other).abs().mean() * cfg.lambda_diversity
    return fake, losses


GENERATOR_LOSSES = {"reconstruction": reconstruction_losses, "mapping": mapping_losses}  # one per stage


def generator_step(run: Run, real: Tensor, one_hot: Tensor, noise: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """One Adam step of the generator on L_G; returns the fake batch and the loss terms (with g_total)."""
    run.discriminator.requires_grad_(False)
    with run.autocast():
        fake, losses = GENERATOR_LOSSES[run.cfg.stage](run, real, one_hot, noise)
        losses["g_total"] = sum(losses.values())
    run.opt_g.zero_grad(set_to_none=True)
    run.scaler.scale(losses["g_total"]).backward()
    run.scaler.step(run.opt_g)
    return fake, losses


@torch.no_grad()
def update_ema(ema: nn.Module | None, model: nn.Module, decay: float) -> None:
    """θ_EMA ← decay·θ_EMA + (1 − decay)·θ; buffers are copied."""
    if ema is None:
        return
    # one foreach call for all tensors: the same per-tensor lerp_/copy_, without a Python loop
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
    buffers = list(ema.buffers())
    if buffers:
        torch._foreach_copy_(buffers, list(model.buffers()))


def discriminator_step(run: Run, real: Tensor, one_hot: Tensor, noise: Tensor, fake: Tensor) -> Tensor:
    """One Adam step of the discriminator on the hinge loss; returns L_D."""
    run.discriminator.requires_grad_(True)
    with torch.no_grad(), run.autocast():  # the authors draw a fresh fake for D; the toy recipe reuses G's
        fake_d = run.g_step(real, one_hot, noise)[0] if run.cfg.regenerate_fake_for_d else fake.detach()
    with run.autocast(), checks_disabled():  # a non-finite fake is reported by the loop, naming the step
        pred = run.d_model(torch.cat([one_hot, one_hot]), torch.cat([fake_d, real]))
        pred_fake, pred_real = split_fake_real(pred, len(real))
        d_loss = hinge_d_loss(pred_real, pred_fake)
    run.opt_d.zero_grad(set_to_none=True)
    run.scaler.scale(d_loss).backward()
    run.scaler.step(run.opt_d)
    run.scaler.update()
    return d_loss

