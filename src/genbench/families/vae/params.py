"""The `vae` section: the engine settings plus the VAE's own."""

from typing import Literal

from pydantic import Field

from genbench.config.train import TrainParams, Width
from genbench.families.common.sizes import widths_problem


class VaeParams(TrainParams):
    """Convolutional VAE (Kingma & Welling 2014): reconstruction + beta * KL."""

    z_dim: int = Field(16, ge=1, le=4096)
    # Encoder widths from full size downwards to 4×4, one per halving; the decoder mirrors them.
    widths: list[Width] = Field(default_factory=lambda: [32, 64], min_length=1, max_length=6)
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    beta: float = Field(1.0, ge=0.0)
    reconstruction_loss: Literal["bce", "mse"] = "bce"

    def size_problem(self, section: str, image_size: int) -> str | None:
        """The widths must fit data.image_size (families/sizes.py, as the networks check)."""
        return widths_problem(section, "widths", self.widths, image_size)
