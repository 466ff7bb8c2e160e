"""DCGAN (Radford, Metz & Chintala 2016): transposed-conv generator, strided-conv discriminator.

Sizes follow `image_size` (a power of two, 8 to 64): the generator starts at 4×4 and doubles once
per entry of `widths`; the discriminator mirrors it.
"""

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from genbench.families.common.sizes import check_widths


def init_weights(module: nn.Module) -> None:
    """The paper's init: conv weights N(0, 0.02), batch-norm scale N(1, 0.02), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (B, z_dim) -> images (B, C, S, S) in [-1, 1]."""

    def __init__(self, z_dim: int, widths: list[int], channels: int, image_size: int):
        super().__init__()
        check_widths(widths, image_size)
        self.z_dim = z_dim
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False),  # (B, w0, 4, 4)
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(widths, widths[1:], strict=False):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """images (B, C, S, S) in [-1, 1] -> real/fake logits (B,).

    spectral_norm: every convolution's weight divided by its largest singular value (one power
    iteration per forward pass) and no batch norm, as in SN-DCGAN (Miyato et al. 2018, Table 3).
    """

    def __init__(
        self, widths: list[int], channels: int, image_size: int, spectral_norm: bool = False
    ):
        super().__init__()
        check_widths(widths, image_size)
        rev = widths[::-1]
        layers: list[nn.Module] = [nn.Conv2d(channels, rev[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(rev, rev[1:], strict=False):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=spectral_norm)]
            layers += [] if spectral_norm else [nn.BatchNorm2d(c_out)]
            layers += [nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(rev[-1], 1, 4, 1, 0)]  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)
        if spectral_norm:  # after init: the parametrisation reads the initialised weight
            for index, layer in enumerate(self.net):
                if isinstance(layer, nn.Conv2d):
                    self.net[index] = nn.utils.parametrizations.spectral_norm(layer)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).flatten()


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, loss: str = "bce"
) -> torch.Tensor:
    """bce: -log D(x) - log(1 - D(G(z))), the paper's discriminator objective, on logits.
    hinge: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. eq. 16)."""
    if loss == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor, loss: str = "bce") -> torch.Tensor:
    """bce: the non-saturating -log D(G(z)) (Goodfellow et al. 2014, section 3);
    hinge: -E[D(G(z))] (Miyato et al. 2018, eq. 17)."""
    if loss == "hinge":
        return -fake_logits.mean()
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
