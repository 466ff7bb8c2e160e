"""The shared loop on tiny models: learning, the NaN guard, checkpoints and resume decisions."""

import pytest
import torch
from torch import nn

from genbench import checkpoint
from genbench.config.train import TrainParams, VaeParams
from genbench.training import vae
from genbench.training.engine import CHECKPOINT, CURVES, Parts, TrainingDivergedError, train
from genbench.training.runtime import Runtime

CPU = Runtime(torch.device("cpu"))


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
    assert result.stats["steps_this_session"] == 150 and result.stats["images_per_second"] > 0
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

    def step(modules, optimizers, batch):
        calls["n"] += 1
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
        TrainingDivergedError, match=r"step 7: loss loss = nan.*last good checkpoint"
    ):
        train(toy_parts(nan_at=7), digits_like(16), params, 0, tmp_path, "h", CPU)
    assert checkpoint.load(tmp_path / CHECKPOINT)["step"] == 5


def test_resume_continues_or_restarts_and_says_why(tmp_path, capsys):
    params = TrainParams(steps=10, batch_size=4, checkpoint_every=5, ema_decay=0.5)
    train(toy_parts(nan_at=-1), digits_like(16), params, 0, tmp_path, "hash-a", CPU)
    longer = params.model_copy(update={"steps": 15})
    result = train(toy_parts(nan_at=-1), digits_like(16), longer, 0, tmp_path, "hash-a", CPU)
    assert result.stats["resumed_from_step"] == 10 and result.stats["steps_this_session"] == 5
    assert "continuing from step 10" in capsys.readouterr().out
    # the cost counts the earlier session too
    assert result.stats["wall_seconds"] > result.stats["wall_seconds_this_session"] > 0
    result = train(toy_parts(nan_at=-1), digits_like(16), longer, 0, tmp_path, "hash-b", CPU)
    assert result.stats["resumed_from_step"] == 0
    assert "other params, data or code" in capsys.readouterr().out
    rows = (tmp_path / CURVES).read_text().splitlines()
    # the fresh run dropped the old run's rows; log_every 25 > steps logs only the last step
    assert [int(r.split(",")[0]) for r in rows[1:]] == [15]


@pytest.mark.parametrize(
    "options",
    [
        {"precision": "bf16"},
        {"channels_last": True},
        pytest.param({"compile": True}, marks=pytest.mark.slow),
    ],
    ids=["bf16", "channels_last", "compile"],
)
def test_engine_options_run_the_gan(tmp_path, options):
    from genbench.config.train import GanParams
    from genbench.training import gan

    params = GanParams(steps=3, batch_size=8, z_dim=4, widths=[8], ema_decay=0.9, **options)
    result = train(gan.build(params, 1, 8), digits_like(32), params, 0, tmp_path, "h", CPU)
    images = gan.sample(result.final.eval(), params, 4, torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 8, 8) and torch.isfinite(images).all()
