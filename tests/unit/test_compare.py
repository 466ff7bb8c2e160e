"""Summaries, Welch and Holm against scipy and direct computations; the budget's steps and FLOPs
(the ranking itself: test_verdict.py)."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from genbench.compare.stats import holm, summary, welch_p
from genbench.config.compare import Budget, CompareParams
from genbench.config.train import TrainParams
from genbench.core.errors import ParamsError
from genbench.families import load_family
from genbench.families.common.base import Family, Parts
from genbench.training.budget import budget_card, budget_steps, step_flops


@pytest.mark.parametrize("values", [[9.1, 9.8, 10.4], [1.0, 2.0], [0.3, 0.31, 0.29, 0.35, 0.33]])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_interval_is_scipys_t_interval(values, confidence):
    found = summary(values, confidence)
    low, high = stats.t.interval(
        confidence, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
    )
    assert found["n"] == len(values) and found["mean"] == pytest.approx(np.mean(values))
    assert found["std"] == pytest.approx(np.std(values, ddof=1))
    assert (found["ci_low"], found["ci_high"]) == pytest.approx((low, high))


def test_one_seed_has_no_interval_and_no_test():
    assert summary([3.0], 0.95)["ci_low"] is None
    assert welch_p([3.0], [4.0, 5.0]) is None


def test_welch_p_is_scipys_unequal_variance_t_test():
    a, b = [9.4, 9.9, 8.8], [10.7, 12.4, 11.0, 10.1]
    assert welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p([1.0, 1.0], [2.0, 2.0]) == 0.0  # no noise at all: separated
    assert welch_p([1.0, 1.0], [1.0, 1.0]) == 1.0


def test_holm_matches_a_direct_step_down():
    p = {"a": 0.01, "b": 0.04, "c": 0.03, "d": None}
    adjusted = holm(p)
    # sorted 0.01, 0.03, 0.04 (None counts last): x4, x3, x2, running max
    assert adjusted["a"] == pytest.approx(0.04)
    assert adjusted["c"] == pytest.approx(0.09)
    assert adjusted["b"] == pytest.approx(0.09)
    assert adjusted["d"] is None


def test_compare_params_refuse_repeated_seeds_and_a_missing_amount():
    with pytest.raises(ValueError, match="listed twice"):
        CompareParams(seeds=[0, 1, 0])
    with pytest.raises(ValueError, match="amount: required"):
        Budget(unit="flops")
    assert Budget(unit="steps").amount is None


def linear_family(width: int) -> Family:
    """A family whose step is one linear layer, forward and backward: FLOPs known by hand."""

    def build(params, channels, image_size):
        net = nn.Linear(channels * image_size * image_size, width, bias=False)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)

        def step(modules, optimizers, batch, autocast=None):
            loss = modules["net"](batch.flatten(1)).square().mean()
            loss.backward()
            optimizers["net"].step()
            return {"loss": loss.detach()}

        return Parts({"net": net}, {"net": opt}, "net", step)

    return Family("linear", TrainParams, build, build, lambda *a: None)


def test_step_flops_count_forward_and_backward_exactly():
    cfg = TrainParams(batch_size=8)
    flops = step_flops(linear_family(5), cfg, channels=1, image_size=4)
    # forward 2·B·in·out; backward: the weight's gradient only (the input needs none): 2·B·in·out
    assert flops == 2 * (2 * 8 * 16 * 5)


def test_step_flops_are_deterministic_scale_with_the_batch_and_leave_rng_alone():
    family = load_family("gan")
    cfg = family.params(batch_size=4, z_dim=8, widths=[16])
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = step_flops(family, cfg, 1, 8)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert step_flops(family, cfg, 1, 8) == first
    double = step_flops(family, cfg.model_copy(update={"batch_size": 8}), 1, 8)
    assert double == 2 * first


def test_budget_gives_equal_flops_images_or_own_steps():
    cfg = TrainParams(steps=77, batch_size=64)
    flops = Budget(unit="flops", amount=1e12)
    assert budget_steps(flops, cfg, 3 * 10**9) == math.floor(1e12 / (3 * 10**9))
    assert budget_steps(Budget(unit="images", amount=6400), cfg, 1) == 100
    assert budget_steps(Budget(unit="steps"), cfg, 10**9) == 77
    card = budget_card(flops, cfg, 3 * 10**9)
    assert card["train_flops"] == card["steps"] * 3 * 10**9 <= 1e12
    assert card["images_seen"] == card["steps"] * 64
    for a, b in itertools.combinations([3 * 10**9, 4 * 10**8, 2 * 10**10], 2):
        spent = [budget_card(flops, cfg, f)["train_flops"] for f in (a, b)]
        assert abs(spent[0] - spent[1]) <= max(a, b)  # equal within one step
        assert min(spent) >= (1 - flops.tolerance) * flops.amount


@pytest.mark.parametrize(
    ("budget", "per_step", "says"),
    [
        (Budget(unit="flops", amount=1e10), 2.37e10, "less than one training step"),
        (Budget(unit="flops", amount=1e10), 4e9, "2 steps spend 80.0% of it"),
        (Budget(unit="images", amount=700), 1, "10 steps spend 91.4% of it"),  # batch 64
        (Budget(unit="flops", amount=1e24), 10**9, "more than 1e+07"),
    ],
)
def test_a_budget_that_is_not_spent_equally_is_refused(budget, per_step, says):
    """Issue 32: 1e10 FLOPs gave the DDPM 1 step at 2.37e10 against the GAN's 9.2e9; now a
    budget that buys no step, too many, or leaves more than the tolerance unspent is refused."""
    cfg = TrainParams(steps=77, batch_size=64)
    with pytest.raises(ParamsError, match="compare.budget.amount") as err:
        budget_steps(budget, cfg, per_step, "ddpm")
    assert says in str(err.value) and "\n" not in str(err.value)
    if "spend" in says:  # a looser tolerance takes what it leaves unspent
        assert budget_steps(budget.model_copy(update={"tolerance": 0.25}), cfg, per_step) >= 2


def test_an_absurd_images_budget_is_refused_by_the_schema():
    with pytest.raises(ValueError, match="more than 1e\\+12 images"):
        Budget(unit="images", amount=1e15)
