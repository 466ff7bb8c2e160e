"""DDPM family: the training step and how to build and sample it."""

import contextlib
from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler
from torch import nn

from genbench.families.common.base import Autocast, Family, Parts, Progress
from genbench.families.ddpm.networks import build_unet, diffusion_loss, generate, make_scheduler
from genbench.families.ddpm.params import DdpmParams


@dataclass
class DdpmStepOut:
    """The step's loss (detached) and the gradient norm before clipping."""

    loss: torch.Tensor
    grad_norm: torch.Tensor


def ddpm_step(
    unet: nn.Module,
    opt: torch.optim.Optimizer,
    scheduler: DDPMScheduler,
    x0: torch.Tensor,
    grad_clip: float,
    autocast: Autocast = contextlib.nullcontext,
    snr_gamma: float | None = None,
) -> DdpmStepOut:
    """One gradient step on the simple diffusion loss, with gradient-norm clipping (the loss
    inside `autocast()`, backward and clipping outside)."""
    with autocast():
        loss = diffusion_loss(unet, scheduler, x0, snr_gamma)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for p in unet.parameters() if p.grad is not None]
    max_norm = grad_clip if grad_clip > 0 else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.step()
    return DdpmStepOut(loss.detach(), norm.detach())


def build_generating(params: DdpmParams, channels: int, image_size: int) -> nn.Module:
    """The noise-predicting UNet."""
    return build_unet(
        image_size,
        channels,
        params.block_widths,
        params.layers_per_block,
        params.attention_levels,
        params.dropout,
    )


def scheduler_for(params: DdpmParams) -> DDPMScheduler:
    return make_scheduler(params.num_train_timesteps, params.beta_schedule, params.prediction_type)


def build(params: DdpmParams, channels: int, image_size: int) -> Parts:
    """The UNet, its noise schedule and AdamW (no weight decay: Adam's update)."""
    unet = build_generating(params, channels, image_size)
    scheduler = scheduler_for(params)
    opt = torch.optim.AdamW(unet.parameters(), lr=params.lr, weight_decay=0.0, fused=True)

    def step(modules, optimizers, x0, autocast=contextlib.nullcontext):
        net, optimizer = modules["unet"], optimizers["unet"]
        out = ddpm_step(net, optimizer, scheduler, x0, params.grad_clip, autocast, params.snr_gamma)
        return {"loss": out.loss, "grad_norm": out.grad_norm}

    return Parts({"unet": unet}, {"unet": opt}, "unet", step)


def sample(
    net: nn.Module,
    params: DdpmParams,
    n: int,
    generator: torch.Generator,
    progress: Progress | None = None,
) -> torch.Tensor:
    """n images in [-1, 1] with the configured sampler (ddim: sample_steps, eta; or ancestral);
    `progress(fraction)` after each denoising step."""
    return generate(
        net,
        scheduler_for(params),
        n,
        generator,
        params.sampler,
        params.sample_steps,
        params.eta,
        progress=progress,
    )


def sampler_card(params: DdpmParams) -> dict:
    """The sampler settings that shape the samples (the protocol card names them)."""
    return {"sampler": params.sampler, "steps": params.sample_steps, "eta": params.eta}


FAMILY = Family("ddpm", DdpmParams, build, build_generating, sample, sampler_card=sampler_card)
