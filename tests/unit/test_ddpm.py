"""DDPM on a tiny UNet: shapes, the noise schedule, one step per prediction type, sampling."""

import pytest
import torch

from genbench.families.ddpm import family as ddpm
from genbench.families.ddpm.networks import (
    build_unet,
    generate,
    make_scheduler,
    reverse_process,
)
from genbench.families.ddpm.params import DdpmParams

TINY = {
    "block_widths": [8, 16],
    "attention_levels": [1],
    "num_train_timesteps": 50,
    "sample_steps": 5,
}


@pytest.mark.parametrize(("size", "channels"), [(8, 1), (16, 3)])
def test_unet_predicts_a_tensor_shaped_like_its_input(size, channels):
    torch.manual_seed(0)
    unet = build_unet(size, channels, [8, 16], 1, [1], 0.0)
    x = torch.randn(2, channels, size, size)
    out = unet(x, torch.tensor([3, 40]), return_dict=False)[0]
    assert out.shape == x.shape


def test_image_size_must_halve_for_every_level():
    with pytest.raises(ValueError, match="cannot be halved 3 times"):
        build_unet(12, 1, [8, 8, 8, 8], 1, [], 0.0)


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
def test_noise_at_t_has_the_variance_of_the_schedule(schedule):
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, abar_t = prod_{s<=t} (1 - beta_s) (eq. 4)."""
    scheduler = make_scheduler(1000, schedule, "epsilon")
    abar = torch.cumprod(1 - scheduler.betas.double(), 0)
    if schedule == "linear":  # Ho et al.: beta from 1e-4 to 0.02
        assert scheduler.betas[0].item() == pytest.approx(1e-4)
        assert scheduler.betas[-1].item() == pytest.approx(0.02)
    torch.manual_seed(0)
    x0 = torch.full((200_000,), 0.5)
    for t in (0, 100, 500, 999):
        x_t = scheduler.add_noise(x0, torch.randn_like(x0), torch.full((len(x0),), t))
        assert x_t.mean().item() == pytest.approx(0.5 * abar[t].sqrt().item(), abs=0.01)
        assert x_t.var().item() == pytest.approx(1 - abar[t].item(), abs=0.01)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_one_training_step_per_prediction_type(prediction_type):
    torch.manual_seed(0)
    params = DdpmParams(**TINY, prediction_type=prediction_type)
    parts = ddpm.build(params, 1, 8)
    before = [p.detach().clone() for p in parts.modules["unet"].parameters()]
    out = parts.step(parts.modules, parts.optimizers, torch.rand(4, 1, 8, 8) * 2 - 1)
    assert torch.isfinite(out["loss"]) and torch.isfinite(out["grad_norm"])
    after = list(parts.modules["unet"].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize(("sampler", "eta"), [("ddim", 0.0), ("ddim", 1.0), ("ancestral", 0.0)])
def test_sampling_is_seeded(sampler, eta):
    torch.manual_seed(0)
    params = DdpmParams(**TINY)
    unet = ddpm.build_generating(params, 1, 8).eval()
    scheduler = make_scheduler(50, "linear", "epsilon")

    def draw(seed):
        return generate(unet, scheduler, 3, torch.Generator().manual_seed(seed), sampler, 5, eta)

    first, again, other = draw(1), draw(1), draw(2)
    assert first.shape == (3, 1, 8, 8)
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize(
    ("sampler", "steps", "expected"),
    [("ddim", 50, 50), ("ddim", 7, 7), ("ancestral", 5, 1000)],  # ancestral: every train step
)
def test_sampling_starts_from_pure_noise_at_the_last_training_timestep(sampler, steps, expected):
    """The first reverse step is t = T - 1, where x_T ~ N(0, I) lives, and the last reaches x_0."""
    reverse, _ = reverse_process(make_scheduler(1000, "linear", "epsilon"), sampler, steps, 0.0)
    timesteps = reverse.timesteps.tolist()
    assert len(timesteps) == expected and timesteps[0] == 999
    assert timesteps == sorted(timesteps, reverse=True) and timesteps[-1] < 1000 / expected
