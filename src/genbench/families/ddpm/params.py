"""The `ddpm` section: the engine settings plus the DDPM's own."""

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from genbench.config.train import TrainParams, Width
from genbench.families.common.sizes import levels_problem


class DdpmParams(TrainParams):
    """DDPM (Ho et al. 2020): diffusers' UNet2DModel and DDPMScheduler; DDIM for fast sampling.

    Options (docs/ablations.md measures each at the default budget):
    - snr_gamma: Min-SNR-γ loss weighting (Hang et al. 2023; they recommend γ = 5); null: off;
    - prediction_type v_prediction (Salimans & Ho 2022);
    - block_widths: a smaller UNet costs fewer FLOPs per step, so the budget buys more steps.
    """

    # UNet block widths, one per resolution level (image_size halves between levels).
    block_widths: list[Width] = Field(
        default_factory=lambda: [32, 64, 64], min_length=1, max_length=6
    )
    layers_per_block: int = Field(1, ge=1, le=4)
    attention_levels: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [2])
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    num_train_timesteps: int = Field(1000, ge=2, le=10_000)
    beta_schedule: Literal["linear", "squaredcos_cap_v2"] = "linear"
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    grad_clip: float = Field(1.0, ge=0.0)  # max gradient norm; 0 turns clipping off
    snr_gamma: float | None = Field(None, gt=0.0)  # Min-SNR-γ weighting; None: the plain loss
    # How samples are drawn (grid, `genbench sample`, evaluate): ddim with sample_steps and eta
    # (eta 0 = deterministic DDIM, 1 = DDPM-like noise), or ancestral over every training step.
    sampler: Literal["ddim", "ancestral"] = "ddim"
    sample_steps: int = Field(50, ge=1, le=10_000)
    eta: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _levels_exist(self) -> Self:
        bad = [level for level in self.attention_levels if level >= len(self.block_widths)]
        if bad:
            levels = len(self.block_widths)
            raise ValueError(
                f"attention_levels = {self.attention_levels}: levels {bad} do not exist, "
                f"block_widths has {levels} levels (0..{levels - 1})"
            )
        if self.sample_steps > self.num_train_timesteps:
            raise ValueError(
                f"sample_steps = {self.sample_steps}: must be at most "
                f"num_train_timesteps = {self.num_train_timesteps}"
            )
        return self

    def size_problem(self, section: str, image_size: int) -> str | None:
        """The block_widths must fit data.image_size (families/sizes.py, as the networks check)."""
        return levels_problem(section, "block_widths", self.block_widths, image_size)
