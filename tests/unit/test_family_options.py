"""Each family option of docs/ablations.md takes effect: every test fails when its option is
ignored (a step with the option on trains other weights than the plain step from the same seed,
and the option does what its paper says)."""

import math

import pytest
import torch
from torch import nn

from genbench.core.imaging import to_unit_range
from genbench.families import load_family
from genbench.families.common.model_dir import load_model, write_model_dir
from genbench.families.ddpm.networks import diffusion_loss, make_scheduler, min_snr_weights
from genbench.families.gan.augment import color, cutout, diff_augment, translation
from genbench.families.gan.networks import Discriminator, discriminator_loss, generator_loss
from genbench.families.vae.family import kl_weight, updates_done
from genbench.families.vae.networks import vae_loss
from genbench.training.engine import train
from tests.unit.test_engine import digits_like, run

TINY = {
    "gan": {"z_dim": 4, "widths": [8]},
    "vae": {"z_dim": 4, "widths": [8]},
    "ddpm": {"block_widths": [8, 16], "attention_levels": [], "num_train_timesteps": 50},
}
OPTIONS = [
    ("gan", {"loss": "hinge"}),
    ("gan", {"spectral_norm": True}),
    ("gan", {"diff_augment": ["color", "translation", "cutout"]}),
    ("vae", {"reconstruction_loss": "optimal_sigma"}),
    ("vae", {"kl_warmup": 0.5}),
    ("ddpm", {"snr_gamma": 5.0}),
    ("ddpm", {"prediction_type": "v_prediction"}),
]


def one_step(name: str, option: dict) -> dict[str, torch.Tensor]:
    """The generating network's weights after two seeded steps of a tiny model on 8x8 images."""
    family = load_family(name)
    params = family.params(steps=4, **TINY[name], **option)
    torch.manual_seed(0)
    parts = family.build(params, 1, 8)
    batch = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    torch.manual_seed(2)
    for _ in range(2):
        parts.step(parts.modules, parts.optimizers, batch)
    return {k: v.clone() for k, v in parts.modules[parts.generating].state_dict().items()}


@pytest.mark.parametrize(("name", "option"), OPTIONS, ids=[str(o) for _, o in OPTIONS])
def test_an_option_moves_the_trained_weights(name, option):
    plain, changed = one_step(name, {}), one_step(name, option)
    assert plain.keys() == changed.keys()
    assert any(not torch.equal(plain[k], changed[k]) for k in plain)
    again = one_step(name, option)  # and it is seeded: the same option trains the same weights
    assert all(torch.equal(again[k], changed[k]) for k in changed)


def test_hinge_loss_is_the_papers():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    # E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]; generator: -E[D(G(z))]
    assert float(discriminator_loss(real, fake, "hinge")) == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert float(generator_loss(fake, "hinge")) == pytest.approx(0.5 / 3)
    assert float(discriminator_loss(real, fake)) != pytest.approx(2.5 / 3 + 3.5 / 3)


def test_spectral_norm_bounds_every_discriminator_layer_and_drops_batch_norm():
    torch.manual_seed(0)
    d = Discriminator([8, 16], 1, 16, spectral_norm=True)
    for _ in range(30):  # power iterations converge over forward passes in training mode
        d(torch.randn(4, 1, 16, 16))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.05)
    plain = Discriminator([8, 16], 1, 16)
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


def test_diff_augment_changes_images_as_the_paper_says_and_passes_gradients():
    torch.manual_seed(0)
    images = torch.rand(64, 1, 16, 16) * 2 - 1
    moved = translation(images)
    for i in range(len(images)):  # each image is itself shifted, with 0 filled in
        found = any(
            torch.equal(
                moved[i, :, max(dy, 0) : 16 + min(dy, 0), max(dx, 0) : 16 + min(dx, 0)],
                images[i, :, max(-dy, 0) : 16 + min(-dy, 0), max(-dx, 0) : 16 + min(-dx, 0)],
            )
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        )
        assert found
    assert not torch.equal(moved, images)
    cut = cutout(images)
    zeros = (cut == 0).flatten(1).sum(1)
    assert int(zeros.max()) == 64 and int(zeros.min()) >= 16  # an 8x8 square, maybe cut by a side
    shifted = color(images)
    assert not torch.allclose(shifted.mean((1, 2, 3)), images.mean((1, 2, 3)))
    fake = images.clone().requires_grad_(True)
    diff_augment(fake, ["color", "translation", "cutout"]).sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert diff_augment(images, []) is images


def test_optimal_sigma_is_the_gaussian_likelihood_at_its_best_variance():
    torch.manual_seed(0)
    images = torch.rand(4, 1, 8, 8) * 2 - 1
    logits, mu, logvar = torch.randn(4, 1, 8, 8), torch.zeros(4, 2), torch.zeros(4, 2)
    rec, kl = vae_loss(logits, images, mu, logvar, "optimal_sigma")
    mse = float(((torch.sigmoid(logits) * 2 - 1 - images) ** 2).mean())
    assert float(rec) == pytest.approx(32 * (math.log(2 * math.pi * mse) + 1), rel=1e-5)
    # the optimum: any other fixed variance gives a larger negative log-likelihood
    for scale in (0.5, 2.0):
        var = mse * scale
        nll = 32 * math.log(2 * math.pi * var) + 64 * mse / (2 * var)
        assert nll > float(rec)
    assert float(kl) == 0.0


def test_kl_warmup_ramps_beta_and_continues_from_the_optimizer_state():
    assert [kl_weight(2.0, 4, done) for done in (0, 2, 4, 9)] == [0.0, 1.0, 2.0, 2.0]
    assert kl_weight(2.0, 0, 0) == 2.0
    family = load_family("vae")
    params = family.params(steps=8, kl_warmup=0.5, **TINY["vae"])
    torch.manual_seed(0)
    parts = family.build(params, 1, 8)
    batch = torch.rand(8, 1, 8, 8) * 2 - 1
    first = parts.step(parts.modules, parts.optimizers, batch)
    assert float(first["loss"]) == pytest.approx(float(first["reconstruction"]))  # beta 0
    for _ in range(2):
        parts.step(parts.modules, parts.optimizers, batch)
    assert updates_done(parts.optimizers["vae"]) == 3
    third = parts.step(parts.modules, parts.optimizers, batch)  # beta 3 / 4
    expected = float(third["reconstruction"]) + 0.75 * float(third["kl"])
    assert float(third["loss"]) == pytest.approx(expected, rel=1e-5)


def test_gmm_density_is_fitted_after_training_saved_and_sampled(tmp_path):
    family = load_family("vae")
    params = family.params(
        steps=30,
        batch_size=16,
        ema_decay=0.9,
        latent_density="gmm",
        gmm_components=3,
        **TINY["vae"],
    )
    images = digits_like(64)
    torch.manual_seed(0)
    result = train(family.build(params, 1, 8), images, params, **run(tmp_path / "w", "h"))
    net = result.final.eval()
    weights, means = net.gmm_weights, net.gmm_means
    assert weights.shape == (3,) and float(weights.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(means.abs().sum()) > 0  # fitted: the buffers start at zero means
    # the mixture sits on the training codes, not on N(0, I)
    codes = net.encode(to_unit_range(images))[0].detach()
    mixture_mean = (weights[:, None] * means).sum(0)
    assert torch.allclose(mixture_mean, codes.mean(0), atol=1e-3)
    draws = net.sample_latents(4000, torch.Generator().manual_seed(0))
    assert torch.allclose(draws.mean(0), mixture_mean, atol=0.1 + 3 * float(codes.std()) / 60)
    first = family.sample(net, params, 4, torch.Generator().manual_seed(3))
    from_prior = net.decode(torch.randn(4, 4, generator=torch.Generator().manual_seed(3)))
    assert not torch.allclose(first, from_prior)
    # saved and loaded as evaluation loads it: the same mixture, the same samples
    data = {"channels": 1, "image_size": 8, "source": "digits"}
    config = {"family": "vae", "params": params.model_dump(mode="json"), "data": data, "seed": 0}
    curves = tmp_path / "losses.csv"
    curves.write_text("step,loss\n1,0.5\n")
    write_model_dir(tmp_path / "model", net, config, {"steps": 1}, curves, {"run_id": "r"})
    loaded = load_model(tmp_path / "model")
    assert torch.equal(loaded.net.gmm_means, means)
    assert torch.equal(
        family.sample(loaded.net, loaded.params, 4, torch.Generator().manual_seed(3)), first
    )


def test_min_snr_weights_follow_the_paper_and_reweight_the_loss():
    scheduler = make_scheduler(50, "linear", "epsilon")
    t = torch.tensor([0, 10, 49])
    alphas = scheduler.alphas_cumprod[t]
    snr = alphas / (1 - alphas)
    weights = min_snr_weights(scheduler, t, 5.0)
    assert torch.allclose(weights, torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert float(weights[0]) < 1.0 and float(weights[2]) == pytest.approx(1.0)  # low t: less
    v = make_scheduler(50, "linear", "v_prediction")
    assert torch.allclose(
        min_snr_weights(v, t, 5.0), torch.minimum(snr, torch.tensor(5.0)) / (snr + 1)
    )
    unet = load_family("ddpm").build_generating(load_family("ddpm").params(**TINY["ddpm"]), 1, 8)
    x0 = torch.rand(8, 1, 8, 8) * 2 - 1
    losses = {}
    for gamma in (None, 5.0, 1e12):
        torch.manual_seed(0)
        losses[gamma] = float(diffusion_loss(unet, scheduler, x0, gamma))
    assert losses[1e12] == pytest.approx(losses[None], rel=1e-6)  # γ above every SNR: weights 1
    assert losses[5.0] != pytest.approx(losses[None], rel=1e-3)


def test_a_warm_up_over_the_run_keeps_a_longer_run_from_continuing_a_shorter_one():
    from genbench.training.run import RESUME_KEYS, resume_keys

    vae = load_family("vae").params
    assert "steps" in resume_keys(vae()) and resume_keys(vae()) == RESUME_KEYS
    assert "steps" not in resume_keys(vae(kl_warmup=0.25))  # the ramp is a share of the steps
    assert "steps" in resume_keys(load_family("gan").params())
