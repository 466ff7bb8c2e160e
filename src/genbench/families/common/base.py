"""What every family hands the rest of genbench: the `Family` record and the training `Parts`.

Generic code (the training loop, the model folder, evaluation, the CLI) sees a family only
through these two types, never through its name.
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from genbench.config.train import TrainParams

# Told how much of the batch being sampled is done, as a fraction in (0, 1] (progress bars only).
Progress = Callable[[float], None]

# A context factory the step enters around its forward pass and loss, and leaves before backward:
# the loop's bf16 autocast, or no change (fp32). Autocast is for the forward only (PyTorch AMP).
Autocast = Callable[[], contextlib.AbstractContextManager]


class StepFn(Protocol):
    """(modules, optimizers, batch (B, C, H, W) in [-1, 1], autocast) -> {loss name: tensor}."""

    def __call__(
        self,
        modules: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        batch: torch.Tensor,
        autocast: Autocast = contextlib.nullcontext,
    ) -> dict[str, torch.Tensor]: ...


@dataclass
class Parts:
    """What a family gives the training loop."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    generating: str  # the network that is EMA-averaged, sampled from and saved as final weights
    step: StepFn  # one update of every optimizer; returns the step's losses
    # Called once on the EMA network after training: averaged weights need fresh batch-norm
    # statistics (averaged running stats do not match them); None when there is nothing to do.
    finalize_ema: Callable[[nn.Module], None] | None = None
    # Modules that run more than once before one backward (a GAN discriminator on real, then
    # fake): under DDP their buffers are not re-broadcast from rank 0 at each forward, as that
    # in-place copy breaks the pending backward through batch norm (pytorch/pytorch#175024).
    local_buffers: frozenset[str] = frozenset()
    # Called on the network to keep (and on each snapshot), after finalize_ema, with the train
    # split as uint8 (N, C, H, W): fits what sampling needs from the data besides the weights,
    # into the network's buffers (the VAE's ex-post latent density); None when nothing is.
    fit_to_data: Callable[[nn.Module, torch.Tensor], None] | None = None


def no_sampler(params: Any) -> None:
    """sampler_card of a family that samples in one pass (nothing to choose)."""
    del params


@dataclass(frozen=True)
class Family:
    """One model family: its params section, how to build, train and sample it.

    `params` is the family's section of params.yaml (a TrainParams subclass). `build` makes the
    training Parts, `build_generating` only the network that is saved and sampled from;
    `sample(net, params, n, generator, progress=None)` gives n images (n, C, H, W) in [-1, 1]
    with all noise from `generator` (CPU); a sampler of many network passes (the DDPM's) calls
    `progress(fraction done)` after each, one-pass samplers ignore it: it must not change what is
    drawn. `reconstructs`: the generating network has `reconstruct(images)`.
    `sampler_card(params)`: the sampler settings that change what samples look like (named in
    the protocol card), or None when the family has no choice of sampler.
    """

    name: str
    params: type[TrainParams]
    build: Callable[[Any, int, int], Parts]
    build_generating: Callable[[Any, int, int], nn.Module]
    sample: Callable[..., torch.Tensor]  # (net, params, n, generator, progress=None)
    reconstructs: bool = False
    sampler_card: Callable[[Any], dict | None] = no_sampler
