"""Snapshots: the generating network's (EMA) weights at fixed fractions of the training budget,
for quality against compute. No optimizer state and no extra training: a copy of the weights.

While training they live in the work folder (checkpoints/<name>/snapshots/), one file per step,
so a killed and resumed run keeps those it made; the model folder gets a copy of each and an
index (fraction, step, FLOPs, images seen). The final weights are the curve's last point.
Each one's sha256 is recorded beside it when it is written and checked before it is resumed
from or copied: a snapshot changed on disk is never shipped in a model folder.
"""

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from genbench.core import checkpoint
from genbench.core.files import sha256_file, write_json
from genbench.core.layout import SNAPSHOT_INDEX, SNAPSHOTS, snapshot_file


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

    def missing(self, resumed_at: int, set_aside: bool = True) -> str | None:
        """Why a checkpoint at step `resumed_at` cannot be continued: a snapshot due at or
        before it was not kept (made by a run with another budget or snapshot list), or is
        damaged (see damage()).

        A damaged snapshot is refused, neither copied into the model folder nor dropped from
        it (the curve would lose a point): a later checkpoint cannot remake it, so training
        restarts from step 0 and writes every snapshot again, as after a corrupt checkpoint.
        With `set_aside` (the main process only) each damaged one is first moved to the work
        folder as `<name>.corrupt-<n>`, kept for a look (the fresh start clears snapshots/).
        """
        reasons = []
        for step in sorted(s for s in self.steps if s <= resumed_at):
            if not self.path(step).exists():
                reasons.append(f"the snapshot due at step {step} was not kept by the earlier run")
            elif why := self.damage(step):
                reasons.append(f"the snapshot due at step {step} is damaged ({why})")
                if set_aside:
                    kept = checkpoint.set_aside(self.path(step), self.folder.parent)
                    reasons[-1] += f"; moved it to {kept}"
        return reasons[0] if reasons else None

    def damage(self, step: int) -> str | None:
        """What is wrong with the kept snapshot of `step`, or None: its sha256 differs from the
        one keep() recorded (one kept before digests: it does not load), or its record is gone."""
        path, record_path = self.path(step), self.path(step).with_suffix(".json")
        try:
            record = json.loads(record_path.read_text())
            float(record["wall_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return f"{record_path.name} is missing or unreadable"
        if "sha256" not in record:
            try:
                checkpoint.load_weights(path)
            except checkpoint.CheckpointError:
                return "it cannot be loaded"
            return None
        try:
            same = sha256_file(path) == record["sha256"]
        except OSError as err:
            return f"unreadable: {err.strerror}"
        return None if same else "sha256 differs from when it was written"

    def clear(self) -> None:
        """Forget the snapshots of another run (a fresh start)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def keep(self, step: int, network: nn.Module, wall_seconds: float) -> None:
        """Write `network`'s weights (atomically), then their sha256 and the training seconds it
        took to get there (a weights file without this record counts as damaged)."""
        digest = checkpoint.save_weights(network.state_dict(), self.path(step))
        record = {"wall_seconds": round(wall_seconds, 3), "sha256": digest}
        write_json(self.path(step).with_suffix(".json"), record)

    def seconds(self) -> dict[int, float]:
        """Training seconds up to each kept step (a resumed run's earlier sessions included)."""
        return {
            step: json.loads(self.path(step).with_suffix(".json").read_text())["wall_seconds"]
            for step in sorted(self.steps)
        }

    def copy_to(self, model_dir: Path, index: list[dict]) -> None:
        """The model folder's snapshots/: every kept step's weights, checked first, and the index
        (the model folder's config.json then records the copies' sha256)."""
        out = model_dir / SNAPSHOTS
        out.mkdir(parents=True, exist_ok=True)
        for step in sorted(self.steps):
            if why := self.damage(step):  # changed since resume checked it, or while training
                raise checkpoint.CheckpointError(
                    f"{self.path(step)}: {why}; rerun the stage: it sets the snapshot aside and "
                    "trains afresh"
                )
            shutil.copyfile(self.path(step), out / snapshot_file(step))
        write_json(out / SNAPSHOT_INDEX, index)
