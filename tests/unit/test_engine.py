"""The shared loop on tiny models: learning, the NaN guard, checkpoints and resume decisions."""

import contextlib

import pytest
import torch
from torch import nn

from genbench.config.train import TrainParams
from genbench.core import checkpoint
from genbench.core.layout import CURVES
from genbench.families.common.base import Parts
from genbench.families.gan import family as gan
from genbench.families.gan.params import GanParams
from genbench.families.vae import family as vae
from genbench.families.vae.params import VaeParams
from genbench.training.engine import train
from genbench.training.resume import CHECKPOINT, TrainingDivergedError
from genbench.training.runtime import Runtime

CPU = Runtime(torch.device("cpu"))


def run(workdir, run_hash: str) -> dict:
    """train()'s keyword arguments for a seed-0 CPU run."""
    return {"seed": 0, "workdir": workdir, "run_hash": run_hash, "runtime": CPU}


def digits_like(n=256, size=8, seed=0) -> torch.Tensor:
    """Blobs at a few fixed places: structured enough for a VAE to learn within steps."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    for i in range(n):
        r, c = torch.randint(0, size - 3, (2,), generator=g).tolist()
        images[i, 0, r : r + 3, c : c + 3] = 255
    return images


def test_a_short_vae_run_lowers_its_loss(tmp_path):
    params = VaeParams(steps=150, batch_size=32, z_dim=4, widths=[16], log_every=25, ema_decay=0.9)
    logged = []
    result = train(
        vae.build(params, 1, 8),
        digits_like(),
        params,
        seed=0,
        workdir=tmp_path,
        run_hash="h",
        runtime=CPU,
        log_metrics=lambda row, step: logged.append(row),
    )
    losses = [row["loss"] for row in logged]
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0]
    stats = result.stats
    assert stats["steps_this_session"] == 150 and stats["resumed_from_step"] == 0
    assert stats["images_per_second"] == pytest.approx(150 * 32 / stats["wall_seconds"], rel=0.01)
    assert (tmp_path / CURVES).read_text().splitlines()[0].startswith("step,loss,reconstruction,kl")


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x):
        return self.linear(x.flatten(1)[:, :4])


def toy_parts(nan_at: int) -> Parts:
    model = Toy()
    calls = {"n": 0}

    def step(modules, optimizers, batch, autocast=contextlib.nullcontext):
        calls["n"] += 1
        with autocast():
            loss = modules["toy"](batch).pow(2).mean()
        optimizers["toy"].zero_grad()
        loss.backward()
        optimizers["toy"].step()
        bad = float("nan") if calls["n"] == nan_at else 1.0
        return {"loss": loss.detach() * bad}

    return Parts({"toy": model}, {"toy": torch.optim.SGD(model.parameters(), lr=0.01)}, "toy", step)


def test_nan_guard_names_the_step_and_keeps_the_last_checkpoint(tmp_path):
    params = TrainParams(steps=20, batch_size=4, checkpoint_every=5, ema_decay=0.0)
    with pytest.raises(
        TrainingDivergedError, match=r"step 7: loss = nan; training stopped, last good checkpoint"
    ):
        train(toy_parts(nan_at=7), digits_like(16), params, **run(tmp_path, "h"))
    assert checkpoint.load(tmp_path / CHECKPOINT)["step"] == 5


def test_nan_guard_before_any_checkpoint_says_so(tmp_path):
    params = TrainParams(steps=20, batch_size=4, checkpoint_every=5, ema_decay=0.0)
    with pytest.raises(
        TrainingDivergedError, match=r"step 3: loss = nan; training stopped, no checkpoint yet"
    ):
        train(toy_parts(nan_at=3), digits_like(16), params, **run(tmp_path, "h"))
    assert not (tmp_path / CHECKPOINT).exists()


def test_resume_continues_or_restarts_and_says_why(tmp_path, capsys):
    params = TrainParams(steps=10, batch_size=4, checkpoint_every=5, ema_decay=0.5)
    train(toy_parts(nan_at=-1), digits_like(16), params, **run(tmp_path, "hash-a"))
    longer = params.model_copy(update={"steps": 15})
    result = train(toy_parts(nan_at=-1), digits_like(16), longer, **run(tmp_path, "hash-a"))
    assert result.stats["resumed_from_step"] == 10 and result.stats["steps_this_session"] == 5
    assert "continuing from step 10" in capsys.readouterr().out
    # the cost counts the earlier session too
    assert result.stats["wall_seconds"] > result.stats["wall_seconds_this_session"] > 0
    result = train(toy_parts(nan_at=-1), digits_like(16), longer, **run(tmp_path, "hash-b"))
    assert result.stats["resumed_from_step"] == 0
    assert "other params, data or code" in capsys.readouterr().out
    rows = (tmp_path / CURVES).read_text().splitlines()
    # the fresh run dropped the old run's rows; log_every 25 > steps logs only the last step
    assert [int(r.split(",")[0]) for r in rows[1:]] == [15]


def flat(module: nn.Module) -> torch.Tensor:
    """All of a module's parameters in one float64 vector."""
    return torch.cat([p.detach().double().flatten() for p in module.parameters()])


def test_ema_follows_the_warm_up_formula_on_each_steps_weights(tmp_path):
    """EMA_1 = w_1; EMA_t+1 = d_t EMA_t + (1 - d_t) w_t+1, d_t = min(decay, (1 + t) / (10 + t))."""
    params = TrainParams(steps=12, batch_size=4, ema_decay=0.9)
    parts, weights = toy_parts(nan_at=-1), []
    inner = parts.step

    def step(modules, optimizers, batch, autocast=contextlib.nullcontext):
        losses = inner(modules, optimizers, batch, autocast)
        weights.append(flat(modules["toy"]))  # what the EMA update after this step sees
        return losses

    parts.step = step
    result = train(parts, digits_like(16), params, **run(tmp_path, "h"))

    def average(decay_at) -> torch.Tensor:
        ema = weights[0]
        for t, w in enumerate(weights[1:], start=1):  # t: updates so far
            ema = decay_at(t) * ema + (1 - decay_at(t)) * w
        return ema

    warm_up = average(lambda t: min(0.9, (1 + t) / (10 + t)))
    fixed = average(lambda t: 0.9)
    assert len(weights) == 12
    assert torch.allclose(flat(result.final), warm_up, rtol=0, atol=1e-6)
    assert (fixed - warm_up).abs().max() > 1e-3  # a fixed decay would fail the line above


def test_a_resumed_run_continues_the_ema_warm_up_bit_for_bit(tmp_path):
    """Stopped after step 5, resumed to 10: the EMA equals an uninterrupted run's exactly."""
    params = TrainParams(steps=10, batch_size=4, checkpoint_every=5, ema_decay=0.9)

    def final(steps: int, workdir) -> dict:
        torch.manual_seed(0)  # the same initial weights for every run
        cfg = params.model_copy(update={"steps": steps})
        result = train(toy_parts(nan_at=-1), digits_like(16), cfg, **run(workdir, "h"))
        return result.final.state_dict() | {"resumed_from": result.stats["resumed_from_step"]}

    whole = final(10, tmp_path / "whole")
    final(5, tmp_path / "split")
    resumed = final(10, tmp_path / "split")
    assert resumed.pop("resumed_from") == 5 and whole.pop("resumed_from") == 0
    assert whole.keys() == resumed.keys()
    for key, value in whole.items():
        assert torch.equal(value, resumed[key]), key


def recording(parts: Parts, seen: list[dict]) -> Parts:
    """parts whose step notes what the engine set up around it: the precision of the forward
    pass (inside the autocast factory the loop passes), autocast during backward and optimizer
    steps (hooks), and the batch's memory format."""
    inner, outside = parts.step, []

    def note_outside(*_) -> None:
        outside.append(torch.is_autocast_enabled("cpu"))

    for module in parts.modules.values():
        next(module.parameters()).register_hook(note_outside)  # called during backward
    for optimizer in parts.optimizers.values():
        optimizer.register_step_pre_hook(note_outside)

    def step(modules, optimizers, batch, autocast=contextlib.nullcontext):
        forward = []

        @contextlib.contextmanager
        def noted():
            with autocast():
                bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16
                forward.append(torch.is_autocast_enabled("cpu") and bf16)
                yield

        outside.clear()
        losses = inner(modules, optimizers, batch, noted)
        seen.append(
            {
                "bf16": bool(forward) and all(forward),
                "autocast_outside_forward": list(outside),
                "channels_last": batch.is_contiguous(memory_format=torch.channels_last)
                and not batch.is_contiguous(),
            }
        )
        return losses

    parts.step = step
    return parts


@pytest.mark.parametrize(
    ("option", "flag"),
    [({"precision": "bf16"}, "bf16"), ({"channels_last": True}, "channels_last")],
    ids=["bf16", "channels_last"],
)
def test_engine_options_take_effect_in_every_step(tmp_path, option, flag):
    """Against a plain run of the same GAN: the option is seen by each step, not ignored."""
    images = digits_like(32).repeat(1, 3, 1, 1)  # 3 channels: 1-channel NCHW is also NHWC

    def run_with(extra: dict) -> tuple[list[dict], dict]:
        params = GanParams(steps=3, batch_size=8, z_dim=4, widths=[8], ema_decay=0.9, **extra)
        seen: list[dict] = []
        torch.manual_seed(0)
        parts = recording(gan.build(params, 3, 8), seen)
        result = train(parts, images, params, **run(tmp_path / flag / str(extra), "h"))
        samples = gan.sample(result.final.eval(), params, 4, torch.Generator().manual_seed(0))
        assert samples.shape == (4, 3, 8, 8) and torch.isfinite(samples).all()
        return seen, result.final.state_dict()

    plain, plain_weights = run_with({})
    used, weights = run_with(option)
    assert [s[flag] for s in plain] == [False] * 3 and [s[flag] for s in used] == [True] * 3
    # backward and the optimizer steps run outside autocast (PyTorch AMP): two backward passes
    # reach a first parameter (D's, then G's) and two optimizers step, in every step
    assert [s["autocast_outside_forward"] for s in used] == [[False] * 4] * 3
    if flag == "bf16":  # lower precision moves the trajectory
        assert any(not torch.equal(weights[k], plain_weights[k]) for k in weights)


@pytest.mark.slow
def test_compile_trains_the_gan(tmp_path):
    params = GanParams(steps=3, batch_size=8, z_dim=4, widths=[8], ema_decay=0.9, compile=True)
    result = train(gan.build(params, 1, 8), digits_like(32), params, **run(tmp_path, "h"))
    assert result.stats["compile"] is True
    images = gan.sample(result.final.eval(), params, 4, torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 8, 8) and torch.isfinite(images).all()
