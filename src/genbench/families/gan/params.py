"""The `gan` section: the engine settings plus DCGAN's own."""

from pydantic import Field

from genbench.config.train import TrainParams, Width
from genbench.families.common.sizes import widths_problem


class GanParams(TrainParams):
    """DCGAN (Radford et al. 2016): non-saturating BCE loss, Adam with betas (0.5, 0.999)."""

    z_dim: int = Field(64, ge=1, le=4096)
    # Generator widths from 4×4 upwards, one per doubling (so log2(image_size) - 2 of them);
    # the discriminator mirrors them.
    widths: list[Width] = Field(default_factory=lambda: [128, 64], min_length=1, max_length=6)
    lr_g: float = Field(2e-4, gt=0.0, le=1.0)
    lr_d: float = Field(2e-4, gt=0.0, le=1.0)

    def size_problem(self, section: str, image_size: int) -> str | None:
        """The widths must fit data.image_size (families/sizes.py, as the networks check)."""
        return widths_problem(section, "widths", self.widths, image_size)
