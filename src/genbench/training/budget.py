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
from genbench.core.errors import ParamsError
from genbench.families.common.base import Family

# The most steps a budget may buy (TrainParams.steps' bound): an absurd amount is refused.
MAX_STEPS = 10_000_000


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


def budget_steps(budget: Budget, cfg: TrainParams, flops_per_step: int, family: str = "") -> int:
    """The steps one family trains for under `budget`: floor(amount / cost of a step).

    Refused (ParamsError) when that is no step at all, more than MAX_STEPS, or leaves more than
    budget.tolerance of the amount unspent: then the families' spends would not be equal."""
    if budget.unit == "steps":
        return cfg.steps
    per_step = flops_per_step if budget.unit == "flops" else cfg.batch_size
    steps = int(budget.amount // per_step)
    key, what = "compare.budget.amount", f"{family or 'the model'}'s step costs {per_step:.3g}"
    if steps < 1:
        raise ParamsError(
            f"{key} = {budget.amount:.3g} {budget.unit}: less than one training step ({what}); "
            f"raise it to at least {per_step:.3g}"
        )
    if steps > MAX_STEPS:
        raise ParamsError(
            f"{key} = {budget.amount:.3g} {budget.unit}: {steps:.3g} steps, more than "
            f"{MAX_STEPS:.0e} ({what}); lower it"
        )
    unspent = 1 - steps * per_step / budget.amount
    if unspent > budget.tolerance:
        raise ParamsError(
            f"{key} = {budget.amount:.3g} {budget.unit}: {steps} steps spend {1 - unspent:.1%} of "
            f"it ({what}), below 1 - compare.budget.tolerance = {1 - budget.tolerance:.0%}: the "
            f"families' spends would differ; raise it to at least "
            f"{per_step / budget.tolerance:.3g} or raise the tolerance"
        )
    return steps


def budget_card(budget: Budget, cfg: TrainParams, flops_per_step: int, family: str = "") -> dict:
    """What a training under `budget` does and costs: for train_stats.json, MLflow, the report."""
    steps = budget_steps(budget, cfg, flops_per_step, family)
    return {
        "budget": budget.model_dump(),
        "steps": steps,
        "flops_per_step": flops_per_step,
        "train_flops": steps * flops_per_step,
        "images_seen": steps * cfg.batch_size,
    }
