"""The engine settings every family's params section extends (families/<name>/params.py)."""

from typing import Annotated, Literal

from pydantic import Field

from genbench.config.base import Section
from genbench.core.system import DEVICE_PATTERN

Width = Annotated[int, Field(ge=1, le=4096)]


class TrainParams(Section):
    """Engine settings every family shares (src/genbench/training/engine.py)."""

    steps: int = Field(2000, ge=1, le=10_000_000)
    batch_size: int = Field(64, ge=1, le=65_536)  # global: split across DDP ranks
    # auto: CUDA when present, else CPU; or cpu, cuda, cuda:N, mps
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 autocast pays on GPUs, not on this CPU
    compile: bool = False  # torch.compile the networks (minutes of compilation first)
    channels_last: bool = False  # NHWC memory format for convolutions (helps on CUDA)
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)  # 0 disables the average
    checkpoint_every: int = Field(500, ge=1)  # steps between resumable checkpoints
    log_every: int = Field(25, ge=1)  # steps between logged (averaged) losses

    def size_problem(self, section: str, image_size: int) -> str | None:
        """Why this family's networks cannot be built for image_size (a one-line message that
        starts with the key to change), or None. Families override it; cheap: no torch."""
        del section, image_size
        return None

    def schedule_spans_steps(self) -> bool:
        """True when the number of steps itself shapes the trajectory (a schedule stretched over
        the run, such as the VAE's KL warm-up): then a run with more steps must not continue a
        shorter run's checkpoint. Families with such a schedule override it."""
        return False
