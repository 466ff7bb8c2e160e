"""The equal training budget: one training step's FLOPs per family, and the steps a budget buys.

FLOPs are counted by torch's FlopCounterMode over one real step (forward, loss, backward and
optimizer update) of freshly built networks at the family's configured (global) batch size, on
the CPU in fp32. The count comes from tensor shapes only, so it is the same on every machine
and every run: the derived steps keep DVC's caching and bit-reproducibility.
"""

import torch
from torch.utils.flop_counter import FlopCounterMode

from genbench.config.compare import Budget
from genbench.config.train import TrainParams
from genbench.families.base import Family


def step_flops(family: Family, cfg: TrainParams, channels: int, image_size: int) -> int:
    """FLOPs of one training step of `family` (matmuls, convolutions, attention; forward and
    backward) at cfg.batch_size images of (channels, image_size, image_size)."""
    with torch.random.fork_rng(devices=[]):  # leaves the caller's random streams untouched
        torch.manual_seed(0)
        parts = family.build(cfg, channels, image_size)
        batch = torch.rand(cfg.batch_size, channels, image_size, image_size) * 2 - 1
        with FlopCounterMode(display=False) as counter:
            parts.step(parts.modules, parts.optimizers, batch)
    return int(counter.get_total_flops())


def budget_steps(budget: Budget, cfg: TrainParams, flops_per_step: int) -> int:
    """The steps one family trains for under `budget` (at least 1)."""
    if budget.unit == "steps":
        return cfg.steps
    per_step = flops_per_step if budget.unit == "flops" else cfg.batch_size
    return max(1, int(budget.amount // per_step))


def budget_card(budget: Budget, cfg: TrainParams, flops_per_step: int) -> dict:
    """What a training under `budget` does and costs: for train_stats.json, MLflow, the report."""
    steps = budget_steps(budget, cfg, flops_per_step)
    return {
        "budget": budget.model_dump(),
        "steps": steps,
        "flops_per_step": flops_per_step,
        "train_flops": steps * flops_per_step,
        "images_seen": steps * cfg.batch_size,
    }
