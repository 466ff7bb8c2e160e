"""Shapes, ranges and loss values of the pure DCGAN and VAE modules."""

import math

import pytest
import torch

from genbench.families.common.sizes import doublings
from genbench.families.gan.networks import (
    Discriminator,
    Generator,
    discriminator_loss,
    generator_loss,
)
from genbench.families.vae.networks import VAE, vae_loss

SIZES = [(8, [16]), (16, [16, 8]), (32, [16, 8, 8]), (64, [16, 8, 8, 8])]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("size", "widths"), SIZES)
def test_dcgan_shapes(size, widths, channels):
    torch.manual_seed(0)
    g, d = Generator(8, widths, channels, size), Discriminator(widths, channels, size)
    images = g(torch.randn(5, 8))
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images).shape == (5,)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("size", "widths"), SIZES)
def test_vae_shapes(size, widths, channels):
    torch.manual_seed(0)
    vae = VAE(4, widths[::-1], channels, size)
    x = torch.rand(3, channels, size, size) * 2 - 1
    logits, mu, logvar = vae(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (3, 4)
    assert vae.reconstruct(x).shape == x.shape
    sample = vae.decode(torch.randn(2, 4))
    assert sample.shape == (2, channels, size, size)
    assert sample.min() >= -1 and sample.max() <= 1


@pytest.mark.parametrize("size", [4, 12, 24, 128])
def test_sizes_without_a_power_of_two_layout_are_refused(size):
    with pytest.raises(ValueError, match=f"got {size}"):
        doublings(size)


def test_widths_must_match_the_image_size():
    with pytest.raises(ValueError, match="needs 2"):
        Generator(8, [16], 1, 16)
    with pytest.raises(ValueError, match="needs 3"):
        VAE(4, [16], 1, 32)


def test_gan_losses_follow_the_formulas():
    zeros = torch.zeros(4)
    # D(x) = 1/2 everywhere: each BCE term is log 2
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zeros).item() == pytest.approx(math.log(2))
    confident = torch.full((4,), 20.0)
    assert discriminator_loss(confident, -confident).item() < 1e-6
    assert generator_loss(-confident).item() == pytest.approx(20.0, rel=1e-6)


def test_vae_loss_kl_and_reconstruction():
    images = torch.zeros(2, 1, 4, 4)  # mid-grey in [-1, 1] -> 0.5 in [0, 1]
    logits = torch.zeros_like(images)  # sigmoid 0.5: perfect mse, bce = entropy of 0.5
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    rec, kl = vae_loss(logits, images, mu, logvar, "mse")
    assert rec.item() == 0 and kl.item() == 0
    rec, _ = vae_loss(logits, images, mu, logvar, "bce")
    assert rec.item() == pytest.approx(16 * math.log(2), rel=1e-6)
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension
    _, kl = vae_loss(logits, images, torch.ones(2, 3), logvar, "mse")
    assert kl.item() == pytest.approx(1.5)
