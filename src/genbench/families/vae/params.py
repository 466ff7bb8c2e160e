"""The `vae` section: the engine settings plus the VAE's own."""

from typing import Literal

from pydantic import Field

from genbench.config.train import TrainParams, Width
from genbench.families.common.sizes import widths_problem


class VaeParams(TrainParams):
    """Convolutional VAE (Kingma & Welling 2014): reconstruction + beta * KL.

    Options (docs/ablations.md measures each at the default budget):
    - reconstruction_loss optimal_sigma: a Gaussian decoder whose variance is the batch's mean
      squared error, its optimum (σ-VAE: Rybkin, Daniilidis & Levine 2021, "Simple and Effective
      VAE Training with Calibrated Decoders", section 4), so the data sets the balance of
      reconstruction and KL instead of a fixed bce/mse weight;
    - kl_warmup: beta ramps linearly from 0 over this fraction of the training steps (Bowman et
      al. 2016; Sønderby et al. 2016);
    - latent_density gmm: samples decode latents drawn from a Gaussian mixture fitted to the
      training images' posterior means after training, not from the N(0, I) prior (the ex-post
      density estimation of Ghosh et al. 2020, "From Variational to Deterministic
      Autoencoders", section 4), with gmm_components components.
    """

    z_dim: int = Field(16, ge=1, le=4096)
    # Encoder widths from full size downwards to 4×4, one per halving; the decoder mirrors them.
    widths: list[Width] = Field(default_factory=lambda: [32, 64], min_length=1, max_length=6)
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    beta: float = Field(1.0, ge=0.0)
    reconstruction_loss: Literal["bce", "mse", "optimal_sigma"] = "bce"
    kl_warmup: float = Field(0.0, ge=0.0, le=1.0)
    latent_density: Literal["prior", "gmm"] = "prior"
    gmm_components: int = Field(10, ge=1, le=1000)

    def schedule_spans_steps(self) -> bool:
        """The KL warm-up ramps over a fraction of the steps: their number shapes the run."""
        return self.kl_warmup > 0

    def size_problem(self, section: str, image_size: int) -> str | None:
        """The widths must fit data.image_size (families/sizes.py, as the networks check)."""
        return widths_problem(section, "widths", self.widths, image_size)
