"""VAE family: the training step and how to build and sample it."""

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genbench.core.imaging import to_unit_range
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
    components = params.gmm_components if params.latent_density == "gmm" else 0
    return VAE(params.z_dim, params.widths, channels, image_size, components)


def updates_done(opt: torch.optim.Optimizer) -> int:
    """The optimizer's completed updates, from its own state: a resumed run (which restores the
    optimizer) continues a schedule where it stopped."""
    state = opt.state.get(opt.param_groups[0]["params"][0], {})
    return int(state["step"]) if "step" in state else 0


def kl_weight(beta: float, warmup_steps: float, done: int) -> float:
    """beta, ramped linearly from 0 over the first warmup_steps updates (KL warm-up: Bowman et
    al. 2016, section 3.1; Sønderby et al. 2016)."""
    return beta if warmup_steps <= 0 else beta * min(1.0, done / warmup_steps)


@torch.no_grad()
def fit_density(net: VAE, images: torch.Tensor, batch_size: int = 512) -> None:
    """Fit net's Gaussian mixture (full covariances, scikit-learn's EM, seeded) to the posterior
    means of uint8 images (N, C, H, W): the ex-post density of Ghosh et al. 2020, section 4."""
    if not hasattr(net, "gmm_weights"):
        return
    from sklearn.mixture import GaussianMixture

    device = next(net.parameters()).device
    codes = [
        net.encode(to_unit_range(images[i : i + batch_size]).to(device))[0].float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    components = len(net.gmm_weights)
    mixture = GaussianMixture(components, covariance_type="full", reg_covar=1e-4, random_state=0)
    mixture.fit(torch.cat(codes).double().numpy())
    for name, value in (
        ("gmm_weights", mixture.weights_),
        ("gmm_means", mixture.means_),
        ("gmm_scale_tril", np.linalg.cholesky(mixture.covariances_)),
    ):
        buffer = getattr(net, name)
        buffer.copy_(torch.from_numpy(value).to(buffer.dtype))


def build(params: VaeParams, channels: int, image_size: int) -> Parts:
    """The VAE and its Adam optimizer."""
    vae = build_generating(params, channels, image_size)
    opt = torch.optim.Adam(vae.parameters(), lr=params.lr, fused=True)  # one kernel per step
    warmup_steps = params.kl_warmup * params.steps

    def step(modules, optimizers, images, autocast=contextlib.nullcontext):
        beta = params.beta
        if warmup_steps > 0:
            beta = kl_weight(params.beta, warmup_steps, updates_done(optimizers["vae"]))
        out = vae_step(
            modules["vae"],
            optimizers["vae"],
            images,
            beta,
            params.reconstruction_loss,
            autocast,
        )
        return {"loss": out.loss, "reconstruction": out.reconstruction, "kl": out.kl}

    fit = fit_density if params.latent_density == "gmm" else None
    return Parts({"vae": vae}, {"vae": opt}, "vae", step, fit_to_data=fit)


@torch.no_grad()
def sample(
    net: VAE,
    params: VaeParams,
    n: int,
    generator: torch.Generator,
    progress: Progress | None = None,
) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1] decoded from z ~ N(0, I), or from the network's fitted
    mixture (latent_density: gmm)."""
    del params, progress  # the latent density is the network's own; one pass: nothing to tell
    z = net.sample_latents(n, generator)
    return net.decode(z.to(next(net.parameters()).device))


FAMILY = Family("vae", VaeParams, build, build_generating, sample, reconstructs=True)
