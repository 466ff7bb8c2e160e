"""The step-based training loop every family shares.

A family hands over `Parts`: its networks, optimizers, which network generates (EMA-averaged and
sampled from), and a step function. The loop draws batches from the in-memory uint8 train split,
runs the step under the chosen device/precision/compile/DDP setup, keeps the EMA, guards against
NaN/inf, logs averaged losses, and writes resumable checkpoints.
"""

import contextlib
import csv
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from genbench import checkpoint
from genbench.config.train import TrainParams
from genbench.errors import GenbenchError
from genbench.layout import CURVES
from genbench.training.runtime import Runtime

StepFn = Callable[[dict[str, nn.Module], dict[str, torch.optim.Optimizer], torch.Tensor], dict]
LogFn = Callable[[dict[str, float], int], None]
CHECKPOINT = "last.pt"


class TrainingDivergedError(GenbenchError):
    """A loss or a weight became NaN or infinite."""


@dataclass
class Parts:
    """What a family gives the engine."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    generating: str  # the network that is EMA-averaged, sampled from and saved as final weights
    step: StepFn  # (modules, optimizers, batch (B, C, H, W) in [-1, 1]) -> {loss name: tensor}
    # Called once on the EMA network after training: averaged weights need fresh batch-norm
    # statistics (averaged running stats do not match them); None when there is nothing to do.
    finalize_ema: Callable[[nn.Module], None] | None = None


@dataclass
class TrainResult:
    """The averaged generating network and what the run cost."""

    final: nn.Module
    stats: dict = field(default_factory=dict)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def _rng_state(data_rng: torch.Generator) -> dict:
    """Every random state a run consumes, as tensors and lists (loadable with weights_only)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "data": data_rng.get_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": np_state[2],
            "has_gauss": np_state[3],
            "gauss": np_state[4],
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, data_rng: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    data_rng.set_state(state["data"])
    nps = state["numpy"]
    keys = nps["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, nps["pos"], nps["has_gauss"], nps["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed torch, numpy and python; call before building networks so their init is seeded."""
    torch.manual_seed(seed + rank)
    np.random.seed(seed + rank)
    random.seed(seed + rank)


def _seed_all(seed: int, rank: int, data_rng: torch.Generator) -> None:
    """Same data order on every rank (the global batch is sharded), different noise per rank."""
    seed_everything(seed, rank)
    data_rng.manual_seed(seed)


def _wrap(module: nn.Module, cfg: TrainParams, runtime: Runtime) -> nn.Module:
    """The module as the step runs it: DDP-wrapped and/or compiled."""
    if runtime.distributed:
        ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        module = DistributedDataParallel(module, device_ids=ids)
    return torch.compile(module) if cfg.compile else module


def _check_finite(losses: dict[str, float], step: int, workdir: Path) -> None:
    for name, value in losses.items():
        if not np.isfinite(value):
            raise TrainingDivergedError(
                f"step {step}: loss {name} = {value}; training stopped, last good checkpoint kept "
                f"at {workdir / CHECKPOINT}; lower the learning rate or check the data"
            )


class _Curves:
    """losses.csv in the work folder: one row per logged step, trimmed to the resume point."""

    def __init__(self, path: Path, start_step: int, enabled: bool):
        self.path, self.enabled = path, enabled
        if enabled and path.exists():
            with open(path, newline="") as handle:
                rows = [r for r in csv.reader(handle)]
            keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= start_step] if rows else []
            with open(path, "w", newline="") as handle:
                csv.writer(handle).writerows(keep)

    def append(self, row: dict[str, float], step: int) -> None:
        if not self.enabled:
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", *row])
            writer.writerow([step, *(f"{v:.6g}" for v in row.values())])


class _Window:
    """Losses summed between log steps; flush() gives their means and the window's img/s."""

    def __init__(self, batch_size: int):
        self.batch_size, self.sums, self.steps = batch_size, {}, 0
        self.start = time.perf_counter()

    def add(self, values: dict[str, float]) -> None:
        self.sums = {k: self.sums.get(k, 0.0) + v for k, v in values.items()}
        self.steps += 1

    def flush(self) -> dict[str, float]:
        now = time.perf_counter()
        row = {k: v / self.steps for k, v in self.sums.items()}
        row["images_per_second"] = self.steps * self.batch_size / (now - self.start)
        self.sums, self.steps, self.start = {}, 0, now
        return row


def _stats(
    parts, cfg: TrainParams, runtime: Runtime, start: int, before: float, now: float
) -> dict:
    """train_stats.json: what the run did and cost, over every session of a resumed run."""
    total = before + now
    return {
        "steps": cfg.steps,
        "steps_this_session": cfg.steps - start,
        "resumed_from_step": start,
        "batch_size": cfg.batch_size,
        "world_size": runtime.world_size,
        "wall_seconds": round(total, 3),
        "wall_seconds_this_session": round(now, 3),
        "images_per_second": round(cfg.steps * cfg.batch_size / total, 2),
        "parameter_count": {
            k: sum(p.numel() for p in m.parameters()) for k, m in parts.modules.items()
        },
        "device": str(runtime.device),
        "precision": cfg.precision,
        "compile": cfg.compile,
    }


def _all_finite(modules: dict[str, nn.Module]) -> bool:
    return all(torch.isfinite(p).all() for m in modules.values() for p in m.parameters())


@dataclass
class _Resumable:
    """Everything a checkpoint holds, and how it is written and restored."""

    parts: Parts
    ema: AveragedModel | None
    data_rng: torch.Generator
    run_hash: str
    runtime: Runtime
    step: int = 0
    seconds: float = 0.0  # training time of the sessions before this one

    def save(self, path: Path, step: int, seconds: float) -> None:
        """Write the state atomically (rank 0 only), refusing non-finite weights."""
        if not _all_finite(self.parts.modules):
            raise TrainingDivergedError(
                f"step {step}: weights became non-finite; last good checkpoint kept "
                f"at {path}; lower the learning rate"
            )
        state = {
            "step": step,
            "seconds": seconds,
            "params_hash": self.run_hash,
            "world_size": self.runtime.world_size,
            "modules": {k: m.state_dict() for k, m in self.parts.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.parts.optimizers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": _rng_state(self.data_rng),
        }
        checkpoint.save(state, path)

    def restore(self, path: Path, seed: int, steps: int) -> None:
        """Load the checkpoint when the same params, data and code made it; else seed afresh."""
        say = print if self.runtime.is_main else (lambda *_: None)
        state = checkpoint.load(path) if path.exists() else None
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
        _set_rng_state(state["rng"], self.data_rng)
        if self.runtime.rank > 0:  # rank 0's noise state was saved; other ranks derive theirs
            torch.manual_seed(seed + self.runtime.rank + 7919 * state["step"])
        self.step, self.seconds = state["step"], state.get("seconds", 0.0)
        say(f"resume: continuing from step {self.step} of {steps} ({path})")

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
        return None


def train(
    parts: Parts,
    images: torch.Tensor,
    cfg: TrainParams,
    seed: int,
    workdir: Path,
    run_hash: str,
    runtime: Runtime,
    log_metrics: LogFn | None = None,
) -> TrainResult:
    """Train for cfg.steps steps on uint8 (N, C, H, W) images, resuming from workdir if possible."""
    if cfg.batch_size % runtime.world_size:
        raise GenbenchError(
            f"batch_size = {cfg.batch_size} must divide evenly over "
            f"{runtime.world_size} processes; pick a multiple"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    device, per_rank = runtime.device, cfg.batch_size // runtime.world_size
    fmt = torch.channels_last if cfg.channels_last else torch.preserve_format
    for module in parts.modules.values():
        module.to(device, memory_format=fmt)
    generating = parts.modules[parts.generating]
    ema = None
    if cfg.ema_decay > 0:
        ema = AveragedModel(
            generating, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True
        )
    state = _Resumable(parts, ema, torch.Generator(), run_hash, runtime)
    state.restore(workdir / CHECKPOINT, seed, cfg.steps)
    start, data_rng = state.step, state.data_rng
    running = {k: _wrap(m, cfg, runtime) for k, m in parts.modules.items()}
    data = images.to(device) if device.type == "cuda" else images  # uint8: small enough
    amp = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if cfg.precision == "bf16"
        else contextlib.nullcontext()
    )
    curves = _Curves(workdir / CURVES, start, runtime.is_main)
    window, started = _Window(cfg.batch_size), time.perf_counter()
    with tqdm(
        total=cfg.steps,
        initial=start,
        disable=not runtime.is_main,
        unit="step",
        mininterval=1.0,
        dynamic_ncols=True,
        desc="train",
    ) as bar:
        for step in range(start + 1, cfg.steps + 1):
            index = torch.randint(len(data), (cfg.batch_size,), generator=data_rng)
            index = index[runtime.rank * per_rank : (runtime.rank + 1) * per_rank].to(data.device)
            batch = to_unit_range(data[index]).to(device, memory_format=fmt)  # (B/world, C, H, W)
            with amp:
                losses = parts.step(running, parts.optimizers, batch)
            # one device sync per step for all losses (float() per loss would sync each)
            stacked = torch.stack([v.detach().float() for v in losses.values()]).tolist()
            values = dict(zip(losses, stacked, strict=True))
            _check_finite(values, step, workdir)
            if ema is not None:
                ema.update_parameters(generating)
            window.add(values)
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = window.flush()
                if runtime.is_main:
                    curves.append(row, step)
                    if log_metrics is not None:
                        log_metrics(row, step)
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()}, refresh=False)
            if runtime.is_main and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                elapsed = state.seconds + time.perf_counter() - started
                state.save(workdir / CHECKPOINT, step, elapsed)
            bar.update(1)
    stats = _stats(parts, cfg, runtime, start, state.seconds, time.perf_counter() - started)
    final = generating
    if ema is not None:
        final = ema.module
        if parts.finalize_ema is not None:
            parts.finalize_ema(final)
    return TrainResult(final, stats)
