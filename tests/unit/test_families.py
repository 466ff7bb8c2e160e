"""The Family contract, run on every family: build, one step, sampling, the model folder.

Golden values pin a tiny seeded model of each family (parameter count, a loss after one step,
a slice of the first sample): a refactor that moves any number fails here first.
"""

import io
import sys

import pytest
import torch

from genbench.families import NAMES, load_family, params_class
from genbench.families.common.model_dir import load_model, sample_images, write_model_dir
from genbench.training.engine import train
from genbench.training.runtime import Runtime

TINY = {
    "gan": {"z_dim": 4, "widths": [8]},
    "vae": {"z_dim": 4, "widths": [8]},
    "ddpm": {
        "block_widths": [8, 16],
        "attention_levels": [1],
        "num_train_timesteps": 50,
        "sample_steps": 5,
    },
}
# Measured once on CPU (torch 2.13, fp32) with the seeds below: 1 × 8 × 8 images, batch 4.
# DDPM samples with DDIM, "trailing" timesteps (49, 39, ..., 9 for 5 steps of 50).
GOLDEN = {
    "gan": (922, "loss_d", 1.3860846, [-0.145908, -0.146691, -0.145599, -0.145012]),
    "vae": (1937, "loss", 45.223770, [0.124474, -0.017244, 0.143758, -0.172223]),
    "ddpm": (44969, "loss", 1.0849025, [-0.306836, 0.390290, -0.988302, -0.016133]),
}


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", NAMES)
def test_family_contract_with_golden_values(name, tmp_path):
    family = load_family(name)
    assert family.name == name and family.params is params_class(name)
    params = family.params(**TINY[name])
    torch.manual_seed(0)
    parts = family.build(params, 1, 8)
    count = sum(p.numel() for m in parts.modules.values() for p in m.parameters())
    batch = torch.rand(4, 1, 8, 8, generator=generator(1)) * 2 - 1
    torch.manual_seed(2)
    losses = parts.step(parts.modules, parts.optimizers, batch)
    net = parts.modules[parts.generating].eval()
    first = family.sample(net, params, 2, generator(3))

    parameters, loss_name, loss, sample_slice = GOLDEN[name]
    assert count == parameters
    assert float(losses[loss_name]) == pytest.approx(loss, rel=1e-5)
    assert first[0, 0, 0, :4].tolist() == pytest.approx(sample_slice, abs=1e-5)
    assert first.shape == (2, 1, 8, 8)
    assert torch.equal(family.sample(net, params, 2, generator(3)), first)  # seeded
    assert not torch.equal(family.sample(net, params, 2, generator(4)), first)
    assert family.reconstructs == hasattr(net, "reconstruct")

    # The model folder round trip: what evaluation loads samples exactly what training saved.
    data = {"channels": 1, "image_size": 8, "source": "digits"}
    config = {"family": name, "params": params.model_dump(mode="json"), "data": data, "seed": 0}
    curves = tmp_path / "losses.csv"
    curves.write_text("step,loss\n1,0.5\n")
    write_model_dir(tmp_path / "model", net, config, {"steps": 1}, curves, {"run_id": "r"})
    loaded = load_model(tmp_path / "model")
    assert loaded.family is family and loaded.params == params and loaded.config == config
    assert torch.equal(family.sample(loaded.net, loaded.params, 2, generator(3)), first)


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the sampling progress bar draws on it."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("name", NAMES)
def test_the_sampling_progress_bar_changes_no_image(name, monkeypatch):
    """The bar only counts: same images (same noise, same batches) with it as without it."""
    family = load_family(name)
    params = family.params(**TINY[name])
    torch.manual_seed(0)
    net = family.build_generating(params, 1, 8).eval()
    told: list[float] = []
    direct = family.sample(net, params, 3, generator(5), told.append)
    assert torch.equal(direct, family.sample(net, params, 3, generator(5)))
    # the DDPM tells after each of its 5 steps; one-pass families tell nothing
    assert told == ([0.2, 0.4, 0.6, 0.8, 1.0] if name == "ddpm" else [])

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # tqdm draws on sys.stderr when it is a tty
    shown = sample_images(family, net, params, 7, seed=9, batch_size=3)
    assert "7/7" in terminal.getvalue() and "img" in terminal.getvalue()
    not_a_terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", not_a_terminal)
    assert torch.equal(shown, sample_images(family, net, params, 7, seed=9, batch_size=3))
    assert not_a_terminal.getvalue() == ""  # DVC and CI logs get no bar


def test_only_families_with_a_choice_of_sampler_have_a_sampler_card():
    cards = {name: load_family(name).sampler_card(params_class(name)()) for name in NAMES}
    assert cards.pop("ddpm") == {"sampler": "ddim", "steps": 50, "eta": 0.0}
    assert set(cards.values()) == {None}


def test_an_unknown_family_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown model family 'gam'; known: gan, vae, ddpm"):
        load_family("gam")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_a_few_cuda_steps_with_bf16_compile_and_channels_last(name, tmp_path):
    family = load_family(name)
    options = {"precision": "bf16", "compile": True, "channels_last": True, "device": "cuda"}
    params = family.params(**TINY[name], steps=3, batch_size=8, log_every=1, **options)
    images = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    cuda = Runtime(torch.device("cuda"))
    result = train(
        family.build(params, 3, 8),
        images,
        params,
        seed=0,
        workdir=tmp_path,
        run_hash="h",
        runtime=cuda,
    )
    samples = family.sample(result.final.eval(), params, 4, generator(0))
    assert samples.is_cuda and samples.shape == (4, 3, 8, 8) and torch.isfinite(samples).all()
    assert result.stats["device"].startswith("cuda") and result.stats["precision"] == "bf16"
