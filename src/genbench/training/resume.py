"""Resumable training state: what a checkpoint holds, and when a checkpoint may be continued."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from genbench.core import checkpoint
from genbench.core.errors import GenbenchError
from genbench.core.seeding import rng_state, seed_everything, set_rng_state
from genbench.families.common.base import Parts
from genbench.training.runtime import Runtime

CHECKPOINT = "last.pt"  # in the work folder, checkpoints/<name>/


class TrainingDivergedError(GenbenchError):
    """A loss or a weight became NaN or infinite."""


def kept_checkpoint(path: Path) -> str:
    """What a diverged training leaves to resume from, for its error line."""
    if path.exists():
        return f"last good checkpoint kept at {path}"
    return "no checkpoint yet (none was written before this step)"


def _seed_all(seed: int, rank: int, data_rng: torch.Generator) -> None:
    """Same data order on every rank (the global batch is sharded), different noise per rank."""
    seed_everything(seed, rank)
    data_rng.manual_seed(seed)


def all_finite(modules: dict[str, nn.Module]) -> bool:
    return all(torch.isfinite(p).all() for m in modules.values() for p in m.parameters())


@dataclass
class Resumable:
    """Everything a checkpoint holds, and how it is written and restored."""

    parts: Parts
    ema: AveragedModel | None
    data_rng: torch.Generator
    run_hash: str
    runtime: Runtime
    step: int = 0
    seconds: float = 0.0  # training time of the sessions before this one
    # why a checkpoint at a step cannot be continued beyond the checks below (None: it can); told
    # whether this is the main process, the only one that may move a damaged file aside
    lacks: Callable[[int, bool], str | None] | None = None

    def save(self, path: Path, step: int, seconds: float) -> None:
        """Write the state atomically (rank 0 only), refusing non-finite weights."""
        if not all_finite(self.parts.modules):
            raise TrainingDivergedError(
                f"step {step}: weights became non-finite; {kept_checkpoint(path)}; "
                "lower the learning rate"
            )
        state = {
            "step": step,
            "seconds": seconds,
            "params_hash": self.run_hash,
            "world_size": self.runtime.world_size,
            "modules": {k: m.state_dict() for k, m in self.parts.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.parts.optimizers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng_state(self.data_rng),
        }
        checkpoint.save(state, path)

    def restore(self, path: Path, seed: int, steps: int) -> None:
        """Load the checkpoint when the same params, data and code made it; else seed afresh."""
        say = print if self.runtime.is_main else (lambda *_: None)
        if self.runtime.is_main and checkpoint.remove_stale_temps(path):
            say(f"resume: removed temp files a killed save left in {path.parent}")
        state = self._readable(path, say)
        why = self._refusal(state, steps) if state is not None else None
        if state is None or why:
            if why:
                say(f"resume: not resuming from {path}: {why}; starting from step 0")
            _seed_all(seed, self.runtime.rank, self.data_rng)
            return
        for name, module in self.parts.modules.items():
            module.load_state_dict(state["modules"][name])
        for name, optimizer in self.parts.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        set_rng_state(state["rng"], self.data_rng)
        if self.runtime.rank > 0:  # rank 0's noise state was saved; other ranks derive theirs
            torch.manual_seed(seed + self.runtime.rank + 7919 * state["step"])
        self.step, self.seconds = state["step"], state.get("seconds", 0.0)
        say(f"resume: continuing from step {self.step} of {steps} ({path})")

    def _readable(self, path: Path, say) -> dict | None:
        """The checkpoint's state, or None when there is none or it cannot be read: then rank 0
        moves it aside (kept, for a look) and says where, so training starts afresh."""
        if not path.exists():
            return None
        try:
            state = checkpoint.load(path)
            if not isinstance(state, dict) or "step" not in state:
                raise checkpoint.CheckpointError(f"{path} is not a training checkpoint")
        except checkpoint.CheckpointError as err:
            if self.runtime.is_main:
                kept = checkpoint.set_aside(path)
                say(f"resume: {str(err)[:160]}; moved it to {kept}; starting from step 0")
            return None
        return state

    def _refusal(self, state: dict, steps: int) -> str | None:
        """Why a checkpoint cannot be continued, or None when it can."""
        if state.get("params_hash") != self.run_hash:
            made_by = str(state.get("params_hash"))[:12]
            return f"it was made with other params, data or code (hash {made_by})"
        if state["step"] > steps:
            return f"it is at step {state['step']}, beyond steps = {steps}"
        if state.get("world_size") != self.runtime.world_size:
            return f"it was made by {state.get('world_size')} processes, this run has " + str(
                self.runtime.world_size
            )
        if self.lacks is None:
            return None
        return self.lacks(state["step"], self.runtime.is_main)
