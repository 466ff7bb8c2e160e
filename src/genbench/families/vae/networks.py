"""Convolutional VAE (Kingma & Welling 2014) with a diagonal Gaussian latent and N(0, I) prior;
optionally sampled from an ex-post Gaussian mixture on the latent codes (Ghosh et al. 2020)."""

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from genbench.families.common.sizes import check_widths


class VAE(nn.Module):
    """Encoder (B, C, S, S) -> (mu, logvar) (B, z_dim); decoder z -> logits (B, C, S, S).

    Images are in [-1, 1]; the decoder's logits map to images through sigmoid(.) * 2 - 1.
    components > 0: buffers for a Gaussian mixture over z (weights (K,), means (K, z_dim),
    Cholesky factors (K, z_dim, z_dim)), fitted after training (fit_density); sampling then
    draws z from it instead of N(0, I).
    """

    def __init__(
        self, z_dim: int, widths: list[int], channels: int, image_size: int, components: int = 0
    ):
        super().__init__()
        check_widths(widths, image_size)
        self.z_dim = z_dim
        if components:
            self.register_buffer("gmm_weights", torch.full((components,), 1.0 / components))
            self.register_buffer("gmm_means", torch.zeros(components, z_dim))
            self.register_buffer("gmm_scale_tril", torch.eye(z_dim).repeat(components, 1, 1))
        enc: list[nn.Module] = []
        for c_in, c_out in zip([channels, *widths], widths, strict=False):
            enc += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        self.encoder = nn.Sequential(*enc, nn.Flatten())  # (B, w[-1] * 4 * 4)
        flat = widths[-1] * 16
        self.to_stats = nn.Linear(flat, 2 * z_dim)
        self.from_z = nn.Linear(z_dim, flat)
        self.top = widths[-1]
        dec: list[nn.Module] = []
        rev = widths[::-1]
        for c_in, c_out in zip(rev, rev[1:], strict=False):
            dec += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        dec += [nn.ConvTranspose2d(rev[-1], channels, 4, 2, 1)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior q(z|x): mean and log-variance, each (B, z_dim)."""
        mu, logvar = self.to_stats(self.encoder(images)).chunk(2, dim=1)
        return mu, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim) -> pixel logits (B, C, S, S)."""
        return self.decoder(F.leaky_relu(self.from_z(z), 0.2).view(len(z), self.top, 4, 4))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, z_dim) -> images in [-1, 1]; sampling decodes z ~ N(0, I)."""
        return torch.sigmoid(self.decode_logits(z)) * 2 - 1

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training pass: (pixel logits, mu, logvar), with z = mu + sigma * eps (eq. 10)."""
        mu, logvar = self.encode(images)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode_logits(z), mu, logvar

    def sample_latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n latents (n, z_dim) on the CPU, all noise from `generator`: from the fitted mixture
        when the network has one, else from the prior N(0, I)."""
        if not hasattr(self, "gmm_weights"):
            return torch.randn(n, self.z_dim, generator=generator)
        weights = self.gmm_weights.detach().float().cpu()
        picked = torch.multinomial(weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.z_dim, 1, generator=generator)
        means, tril = self.gmm_means.float().cpu(), self.gmm_scale_tril.float().cpu()
        return means[picked] + (tril[picked] @ eps).squeeze(-1)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction through the posterior mean, images in [-1, 1]."""
        mu, _ = self.encode(images)
        return self.decode(mu)


def vae_loss(
    logits: torch.Tensor,
    images: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    reconstruction: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative ELBO per image: (reconstruction, KL), each averaged over the batch.

    KL(q(z|x) || N(0, I)) = -1/2 * sum(1 + logvar - mu^2 - exp(logvar))  (Kingma & Welling, App. B).
    bce treats pixels in [0, 1] as Bernoulli means; mse is the squared error of images in [-1, 1];
    optimal_sigma is the Gaussian negative log-likelihood with one variance, set to its optimum
    sigma^2 = the batch's mean squared error: D/2 * (log(2 pi sigma^2) + 1) per image of D
    values (Rybkin et al. 2021, eq. 5 and section 4). The total is reconstruction + beta * KL.
    """
    batch = len(images)
    if reconstruction == "optimal_sigma":
        mse = F.mse_loss(torch.sigmoid(logits) * 2 - 1, images).clamp_min(1e-6)
        recon = 0.5 * images[0].numel() * (torch.log(2 * math.pi * mse) + 1)
    elif reconstruction == "bce":
        target = (images + 1) / 2
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / batch
    elif reconstruction == "mse":
        recon = F.mse_loss(torch.sigmoid(logits) * 2 - 1, images, reduction="sum") / batch
    else:
        raise ValueError(
            f"reconstruction must be 'bce', 'mse' or 'optimal_sigma', got {reconstruction!r}"
        )
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / batch
    return recon, kl
