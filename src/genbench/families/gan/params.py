"""The `gan` section: the engine settings plus DCGAN's own."""

from typing import Literal

from pydantic import Field

from genbench.config.train import TrainParams, Width
from genbench.families.common.sizes import widths_problem

Augmentation = Literal["color", "translation", "cutout"]


class GanParams(TrainParams):
    """DCGAN (Radford et al. 2016): non-saturating BCE loss, Adam with betas (0.5, 0.999).

    Options (docs/ablations.md measures each at the default budget):
    - loss: hinge (Lim & Ye 2017; Miyato et al. 2018) instead of the paper's BCE;
    - spectral_norm: the discriminator's convolutions spectrally normalised, its batch norm
      removed (Miyato et al. 2018, "Spectral Normalization for GANs");
    - diff_augment: the same differentiable augmentations of real and fake images before every
      discriminator pass (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
      Training"), made for small datasets.
    """

    z_dim: int = Field(64, ge=1, le=4096)
    # Generator widths from 4×4 upwards, one per doubling (so log2(image_size) - 2 of them);
    # the discriminator mirrors them.
    widths: list[Width] = Field(default_factory=lambda: [128, 64], min_length=1, max_length=6)
    lr_g: float = Field(2e-4, gt=0.0, le=1.0)
    lr_d: float = Field(2e-4, gt=0.0, le=1.0)
    loss: Literal["bce", "hinge"] = "bce"
    spectral_norm: bool = False
    diff_augment: list[Augmentation] = Field(default_factory=list, max_length=3)

    def size_problem(self, section: str, image_size: int) -> str | None:
        """The widths must fit data.image_size (families/sizes.py, as the networks check)."""
        return widths_problem(section, "widths", self.widths, image_size)
