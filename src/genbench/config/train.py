"""The `gan` and `vae` sections: the shared engine settings plus each family's own."""

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from genbench.config.base import Section

Width = Annotated[int, Field(ge=1, le=4096)]


class TrainParams(Section):
    """Engine settings every family shares (src/genbench/training/engine.py)."""

    steps: int = Field(2000, ge=1, le=10_000_000)
    batch_size: int = Field(64, ge=1, le=65_536)  # global: split across DDP ranks
    # auto: CUDA when present, else CPU; or cpu, cuda, cuda:N, mps
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 autocast pays on GPUs, not on this CPU
    compile: bool = False  # torch.compile the networks (minutes of compilation first)
    channels_last: bool = False  # NHWC memory format for convolutions (helps on CUDA)
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)  # 0 disables the average
    checkpoint_every: int = Field(500, ge=1)  # steps between resumable checkpoints
    log_every: int = Field(25, ge=1)  # steps between logged (averaged) losses


class GanParams(TrainParams):
    """DCGAN (Radford et al. 2016): non-saturating BCE loss, Adam with betas (0.5, 0.999)."""

    z_dim: int = Field(64, ge=1, le=4096)
    # Generator widths from 4×4 upwards, one per doubling (so log2(image_size) - 2 of them);
    # the discriminator mirrors them.
    widths: list[Width] = Field(default_factory=lambda: [128, 64], min_length=1, max_length=6)
    lr_g: float = Field(2e-4, gt=0.0, le=1.0)
    lr_d: float = Field(2e-4, gt=0.0, le=1.0)


class VaeParams(TrainParams):
    """Convolutional VAE (Kingma & Welling 2014): reconstruction + beta * KL."""

    z_dim: int = Field(16, ge=1, le=4096)
    # Encoder widths from full size downwards to 4×4, one per halving; the decoder mirrors them.
    widths: list[Width] = Field(default_factory=lambda: [32, 64], min_length=1, max_length=6)
    lr: float = Field(1e-3, gt=0.0, le=1.0)
    beta: float = Field(1.0, ge=0.0)
    reconstruction_loss: Literal["bce", "mse"] = "bce"


class DdpmParams(TrainParams):
    """DDPM (Ho et al. 2020): diffusers' UNet2DModel and DDPMScheduler; DDIM for fast sampling."""

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
                f"attention_levels {bad} do not exist: block_widths has "
                f"{levels} levels (0..{levels - 1})"
            )
        if self.sample_steps > self.num_train_timesteps:
            raise ValueError(
                f"sample_steps {self.sample_steps} > num_train_timesteps {self.num_train_timesteps}"
            )
        return self
