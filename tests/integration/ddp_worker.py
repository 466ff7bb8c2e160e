"""One rank of the shared loop under DDP, started twice by test_ddp_engine.py (gloo, CPU).

`python -m tests.integration.ddp_worker SCENARIO OUT` with torchrun's environment (RANK,
WORLD_SIZE, MASTER_ADDR, ...) trains a tiny 16×16 GAN, whose discriminator has batch norm, and
writes OUT/rank<r>.pt: its weights and what its step saw, or, when training diverges, the error
line. SCENARIO "nan": rank 1 alone sees loss_d = NaN at step NAN_STEP.
"""

import contextlib
import sys
from pathlib import Path

import torch

from genbench.core import checkpoint
from genbench.families.gan import family as gan
from genbench.families.gan.params import GanParams
from genbench.training.engine import train
from genbench.training.resume import TrainingDivergedError
from genbench.training.runtime import start_runtime, stop_runtime

NAN_STEP = 3
PARAMS = GanParams(steps=6, batch_size=8, z_dim=4, widths=[8, 8], ema_decay=0.9, log_every=1)


def observed(parts, rank: int, scenario: str, seen: list[dict]):
    """The GAN's step, noting which DDP wrappers re-broadcast buffers; NaN on rank 1 for 'nan'."""
    inner, calls = parts.step, [0]

    def step(modules, optimizers, batch, autocast=contextlib.nullcontext):
        calls[0] += 1
        seen.append({k: bool(m.broadcast_buffers) for k, m in modules.items()})
        losses = inner(modules, optimizers, batch, autocast)
        if scenario == "nan" and rank == 1 and calls[0] == NAN_STEP:
            losses["loss_d"] = losses["loss_d"] * float("nan")
        return losses

    parts.step = step
    return parts


def main(scenario: str, out: Path) -> None:
    runtime = start_runtime("cpu")
    torch.manual_seed(0)  # the same initial weights on both ranks, as DDP requires
    parts, seen = gan.build(PARAMS, 1, 16), []
    parts = observed(parts, runtime.rank, scenario, seen)
    images = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8)
    state: dict = {"seen": seen}
    try:
        workdir = out / f"work{runtime.rank}"
        result = train(
            parts, images, PARAMS, seed=0, workdir=workdir, run_hash="h", runtime=runtime
        )
        state["modules"] = {k: m.state_dict() for k, m in parts.modules.items()}
        state["final"] = result.final.state_dict()
    except TrainingDivergedError as err:
        state["error"] = str(err)
    finally:
        stop_runtime(runtime)
    checkpoint.save(state, out / f"rank{runtime.rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
