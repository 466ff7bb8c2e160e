"""DCGAN family: the training step and how to build and sample it."""

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from genbench.families.common.base import Autocast, Family, Parts, Progress
from genbench.families.gan.augment import diff_augment
from genbench.families.gan.networks import (
    Discriminator,
    Generator,
    discriminator_loss,
    generator_loss,
)
from genbench.families.gan.params import GanParams


@dataclass
class GanStepOut:
    """Losses of one step (detached) and the discriminator's mean belief on real and fake."""

    loss_d: torch.Tensor
    loss_g: torch.Tensor
    d_real: torch.Tensor
    d_fake: torch.Tensor


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """Inside: net's weights need no gradients, and a DDP-wrapped net does not sync any.

    The generator's update backpropagates through the discriminator only for d loss / d fake;
    skipping the discriminator's weight gradients there saves work and changes no result.
    """
    params = [p for p in net.parameters() if p.requires_grad]
    for param in params:
        param.requires_grad_(False)
    try:
        with net.no_sync() if hasattr(net, "no_sync") else contextlib.nullcontext():
            yield
    finally:
        for param in params:
            param.requires_grad_(True)


def gan_step(
    g: nn.Module,
    d: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z_dim: int,
    autocast: Autocast = contextlib.nullcontext,
    loss: str = "bce",
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> GanStepOut:
    """One alternating update (Goodfellow et al. 2014, Alg. 1, k = 1): D, then G.

    `loss`: bce or hinge (networks.py); `augment`: applied to every batch D sees (DiffAugment).
    Forward passes and losses run inside `autocast()`; backward and optimizer steps outside.
    d_real and d_fake are the mean sigmoid of D's logits (for hinge: a monotone reading only)."""
    seen = augment or (lambda images: images)
    z = torch.randn(len(real), z_dim, device=real.device)
    with autocast():
        fake = g(z)  # (B, C, H, W) in [-1, 1]
        # separate batches, as in DCGAN
        real_logits, fake_logits = d(seen(real)), d(seen(fake.detach()))
        loss_d = discriminator_loss(real_logits, fake_logits, loss)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    with frozen(d):
        with autocast():
            loss_g = generator_loss(d(seen(fake)), loss)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
    opt_g.step()
    return GanStepOut(
        loss_d.detach(),
        loss_g.detach(),
        torch.sigmoid(real_logits.detach()).mean(),
        torch.sigmoid(fake_logits.detach()).mean(),
    )


def build_generating(params: GanParams, channels: int, image_size: int) -> Generator:
    """The network that makes images: the generator."""
    return Generator(params.z_dim, params.widths, channels, image_size)


def build(params: GanParams, channels: int, image_size: int) -> Parts:
    """Generator, discriminator and their Adam optimizers (betas (0.5, 0.999), as in DCGAN)."""
    g = build_generating(params, channels, image_size)
    d = Discriminator(params.widths, channels, image_size, params.spectral_norm)
    opt_g = torch.optim.Adam(g.parameters(), lr=params.lr_g, betas=(0.5, 0.999), fused=True)
    opt_d = torch.optim.Adam(d.parameters(), lr=params.lr_d, betas=(0.5, 0.999), fused=True)

    augment = partial(diff_augment, policy=params.diff_augment) if params.diff_augment else None

    def step(modules, optimizers, real, autocast=contextlib.nullcontext):
        out = gan_step(
            modules["generator"],
            modules["discriminator"],
            optimizers["generator"],
            optimizers["discriminator"],
            real,
            params.z_dim,
            autocast,
            params.loss,
            augment,
        )
        return {
            "loss_d": out.loss_d,
            "loss_g": out.loss_g,
            "d_real": out.d_real,
            "d_fake": out.d_fake,
        }

    def refresh_statistics(ema_generator: nn.Module) -> None:
        """Batch-norm statistics for the averaged weights, from 32 batches of fresh noise."""
        rng = torch.Generator().manual_seed(0)
        device = next(ema_generator.parameters()).device
        batches = [torch.randn(256, params.z_dim, generator=rng).to(device) for _ in range(32)]
        update_bn(batches, ema_generator)

    return Parts(
        {"generator": g, "discriminator": d},
        {"generator": opt_g, "discriminator": opt_d},
        "generator",
        step,
        finalize_ema=refresh_statistics,
        local_buffers=frozenset({"discriminator"}),  # it sees real, then fake, then fake again
    )


@torch.no_grad()
def sample(
    net: Generator,
    params: GanParams,
    n: int,
    generator: torch.Generator,
    progress: Progress | None = None,
) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1] from z ~ N(0, I) drawn with `generator` (CPU)."""
    del params, progress  # the latent size is the network's own; one pass: nothing to tell
    z = torch.randn(n, net.z_dim, generator=generator)
    return net(z.to(next(net.parameters()).device))


FAMILY = Family("gan", GanParams, build, build_generating, sample)
