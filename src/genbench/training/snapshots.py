"""Snapshots: the generating network's (EMA) weights at fixed fractions of the training budget,
for quality against compute. No optimizer state and no extra training: a copy of the weights.

While training they live in the work folder (checkpoints/<name>/snapshots/), one file per step,
so a killed and resumed run keeps those it made; the model folder gets a copy of each and an
index (fraction, step, FLOPs, images seen). The final weights are the curve's last point.
"""

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from genbench import checkpoint
from genbench.files import write_json
from genbench.layout import SNAPSHOT_INDEX, SNAPSHOTS, snapshot_file


def snapshot_steps(fractions: list[float], steps: int) -> list[int]:
    """The training step of each fraction of `steps`: round(fraction × steps), at least 1."""
    return [max(1, math.floor(fraction * steps + 0.5)) for fraction in fractions]


def snapshot_index(
    fractions: list[float], steps: int, flops_per_step: int, batch_size: int
) -> list[dict]:
    """One row per fraction: its step, the training FLOPs and images seen up to it, and its
    weights file (None: the final weights, weights.safetensors)."""
    return [
        {
            "fraction": fraction,
            "step": step,
            "flops": step * flops_per_step,
            "images_seen": step * batch_size,
            "file": None if step == steps else snapshot_file(step),
        }
        for fraction, step in zip(fractions, snapshot_steps(fractions, steps), strict=True)
    ]


@dataclass(frozen=True)
class SnapshotKeeper:
    """Keeps the weights of the given steps in `folder` (the work folder's snapshots/)."""

    folder: Path
    steps: frozenset[int]  # the steps before the last whose weights are kept

    @classmethod
    def for_run(cls, workdir: Path, index: list[dict]) -> "SnapshotKeeper":
        kept = {row["step"] for row in index if row["file"] is not None}
        return cls(workdir / SNAPSHOTS, frozenset(kept))

    def path(self, step: int) -> Path:
        return self.folder / snapshot_file(step)

    def missing(self, resumed_at: int) -> str | None:
        """Why a checkpoint at step `resumed_at` cannot be continued: a snapshot due at or
        before it was not kept (made by a run with another budget or snapshot list)."""
        lost = sorted(s for s in self.steps if s <= resumed_at and not self.path(s).exists())
        if lost:
            return f"the snapshot due at step {lost[0]} was not kept by the earlier run"
        return None

    def clear(self) -> None:
        """Forget the snapshots of another run (a fresh start)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def keep(self, step: int, network: nn.Module, wall_seconds: float) -> None:
        """Write `network`'s weights (atomically) and the training seconds it took to get there."""
        checkpoint.save_weights(network.state_dict(), self.path(step))
        write_json(self.path(step).with_suffix(".json"), {"wall_seconds": round(wall_seconds, 3)})

    def seconds(self) -> dict[int, float]:
        """Training seconds up to each kept step (a resumed run's earlier sessions included)."""
        return {
            step: json.loads(self.path(step).with_suffix(".json").read_text())["wall_seconds"]
            for step in sorted(self.steps)
        }

    def copy_to(self, model_dir: Path, index: list[dict]) -> None:
        """The model folder's snapshots/: every kept step's weights and the index."""
        out = model_dir / SNAPSHOTS
        out.mkdir(parents=True, exist_ok=True)
        for step in sorted(self.steps):
            shutil.copyfile(self.path(step), out / snapshot_file(step))
        write_json(out / SNAPSHOT_INDEX, index)
