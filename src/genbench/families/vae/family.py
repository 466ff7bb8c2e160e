"""VAE family: the training step and how to build and sample it."""

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from genbench.families.common.base import Autocast, Family, Parts, Progress
from genbench.families.vae.networks import VAE, vae_loss
from genbench.families.vae.params import VaeParams


@dataclass
class VaeStepOut:
    """Losses of one step (detached): total = reconstruction + beta * KL."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def vae_step(
    vae: nn.Module,
    opt: torch.optim.Optimizer,
    images: torch.Tensor,
    beta: float,
    recon: str,
    autocast: Autocast = contextlib.nullcontext,
) -> VaeStepOut:
    """One gradient step on the negative ELBO with the reparameterisation trick (the forward
    pass and loss inside `autocast()`, backward outside)."""
    with autocast():
        logits, mu, logvar = vae(images)
        rec, kl = vae_loss(logits, images, mu, logvar, recon)
        loss = rec + beta * kl
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return VaeStepOut(loss.detach(), rec.detach(), kl.detach())


def build_generating(params: VaeParams, channels: int, image_size: int) -> VAE:
    """The whole VAE: its decoder samples, its encoder reconstructs."""
    return VAE(params.z_dim, params.widths, channels, image_size)


def build(params: VaeParams, channels: int, image_size: int) -> Parts:
    """The VAE and its Adam optimizer."""
    vae = build_generating(params, channels, image_size)
    opt = torch.optim.Adam(vae.parameters(), lr=params.lr, fused=True)  # one kernel per step

    def step(modules, optimizers, images, autocast=contextlib.nullcontext):
        out = vae_step(
            modules["vae"],
            optimizers["vae"],
            images,
            params.beta,
            params.reconstruction_loss,
            autocast,
        )
        return {"loss": out.loss, "reconstruction": out.reconstruction, "kl": out.kl}

    return Parts({"vae": vae}, {"vae": opt}, "vae", step)


@torch.no_grad()
def sample(
    net: VAE,
    params: VaeParams,
    n: int,
    generator: torch.Generator,
    progress: Progress | None = None,
) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1] decoded from the prior z ~ N(0, I)."""
    del params, progress  # the latent size is the network's own; one pass: nothing to tell
    z = torch.randn(n, net.z_dim, generator=generator)
    return net.decode(z.to(next(net.parameters()).device))


FAMILY = Family("vae", VaeParams, build, build_generating, sample, reconstructs=True)
