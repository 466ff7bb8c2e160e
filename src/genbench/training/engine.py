"""The step-based training loop every family shares.

A family hands over `Parts`: its networks, optimizers, which network generates (EMA-averaged and
sampled from), and a step function. The loop draws batches from the in-memory uint8 train split,
runs the step under the chosen device/precision/compile/DDP setup, keeps the EMA, guards against
NaN/inf, logs averaged losses, and writes resumable checkpoints (resume.py).
"""

import contextlib
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from genbench.config.train import TrainParams
from genbench.core.errors import GenbenchError
from genbench.core.imaging import to_unit_range
from genbench.core.layout import CURVES
from genbench.families.common.base import Autocast, Parts
from genbench.training.progress import Curves, Window
from genbench.training.resume import (
    CHECKPOINT,
    Resumable,
    TrainingDivergedError,
    kept_checkpoint,
)
from genbench.training.runtime import Runtime
from genbench.training.snapshots import SnapshotKeeper

LogFn = Callable[[dict[str, float], int], None]


@dataclass
class TrainResult:
    """The averaged generating network and what the run cost."""

    final: nn.Module
    stats: dict = field(default_factory=dict)


class Batches:
    """Seeded random batches of the uint8 train split; each rank takes its shard of one draw."""

    def __init__(
        self,
        images: torch.Tensor,
        cfg: TrainParams,
        runtime: Runtime,
        rng: torch.Generator,
        fmt: torch.memory_format,
    ):
        self.device, self.rng, self.fmt = runtime.device, rng, fmt
        self.size, self.rank = cfg.batch_size, runtime.rank
        self.per_rank = cfg.batch_size // runtime.world_size
        self.data = images.to(self.device) if self.device.type == "cuda" else images  # small

    def next(self) -> torch.Tensor:
        """(B / world, C, H, W) float in [-1, 1] on the device."""
        index = torch.randint(len(self.data), (self.size,), generator=self.rng)
        index = index[self.rank * self.per_rank : (self.rank + 1) * self.per_rank]
        batch = self.data[index.to(self.data.device)]
        return to_unit_range(batch).to(self.device, memory_format=self.fmt)


def _wrap(module: nn.Module, cfg: TrainParams, runtime: Runtime, broadcast: bool) -> nn.Module:
    """The module as the step runs it: DDP-wrapped and/or compiled.

    broadcast: DDP copies rank 0's buffers to every rank before each forward (False for the
    modules a family lists in Parts.local_buffers)."""
    if runtime.distributed:
        ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        module = DistributedDataParallel(module, device_ids=ids, broadcast_buffers=broadcast)
    return torch.compile(module) if cfg.compile else module


def _check_finite(losses: dict[str, float], step: int, workdir: Path) -> None:
    for name, value in losses.items():
        if not np.isfinite(value):
            raise TrainingDivergedError(
                f"step {step}: {name} = {value}; training stopped, "
                f"{kept_checkpoint(workdir / CHECKPOINT)}; lower the learning rate or check the "
                "data"
            )


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


def _read_losses(
    losses: dict[str, torch.Tensor], step: int, workdir: Path, runtime: Runtime
) -> dict[str, float]:
    """This rank's losses as floats, after one device sync for all (float() per loss: one each).

    Under DDP the check reads the losses summed over ranks: NaN or inf on any rank makes the sum
    non-finite, so every rank stops at the same step with the same error, instead of one rank
    raising while the others wait forever in the next gradient all-reduce."""
    stacked = torch.stack([v.detach().float() for v in losses.values()])
    checked = stacked
    if runtime.distributed:
        checked = stacked.clone()
        dist.all_reduce(checked)  # one small all-reduce per step, beside DDP's gradient ones
    local, summed = torch.stack([stacked, checked]).tolist()
    _check_finite(dict(zip(losses, summed, strict=True)), step, workdir)
    return dict(zip(losses, local, strict=True))


def warmup_decay(decay: float, updates: int) -> float:
    """The EMA decay after `updates` updates: min(decay, (1 + t) / (10 + t)).

    Early weights are far from the final ones; a fixed decay 0.999 started at step 1 would still
    hold e^-1 of them after 1000 steps. The warm-up (TensorFlow's ExponentialMovingAverage with
    num_updates) lets the average follow the network until t / (10 + t) nears `decay`."""
    return min(decay, (1 + updates) / (10 + updates))


def _ema_update(decay: float):
    """AveragedModel's multi_avg_fn: lerp the averages toward the network by 1 - decay_t."""

    @torch.no_grad()
    def update(averages: list, current: list, n_averaged: torch.Tensor) -> None:
        # n_averaged is checkpointed with the EMA, so a resumed run continues the same schedule;
        # reading it costs a sync, after the one _read_losses made: the device is idle already
        decay_t = warmup_decay(decay, int(n_averaged))
        if torch.is_floating_point(averages[0]):
            torch._foreach_lerp_(averages, current, 1 - decay_t)
        else:  # integer buffers (batch norm's num_batches_tracked): lerp has no integer kernel
            for average, value in zip(averages, current, strict=True):
                average.copy_(average * decay_t + value * (1 - decay_t))

    return update


def _ema(generating: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of the generating network's weights, with the warm-up of
    warmup_decay (None: decay 0). Its first update copies the weights."""
    if decay <= 0:
        return None
    return AveragedModel(generating, multi_avg_fn=_ema_update(decay), use_buffers=True)


def _final(
    generating: nn.Module, ema: AveragedModel | None, parts: Parts, images: torch.Tensor
) -> nn.Module:
    """The network to keep: the EMA's (batch-norm statistics refreshed), else the raw one;
    fitted to the train images where the family asks (Parts.fit_to_data)."""
    kept = generating
    if ema is not None:
        if parts.finalize_ema is not None:
            parts.finalize_ema(ema.module)
        kept = ema.module
    if parts.fit_to_data is not None:
        parts.fit_to_data(kept, images)
    return kept


def _snapshot(
    generating: nn.Module, ema: AveragedModel | None, parts: Parts, images: torch.Tensor
) -> nn.Module:
    """What _final would keep if training stopped now, leaving the running average and the
    training network untouched (finalize_ema refreshes statistics in place, with its own random
    generator; fit_to_data writes buffers)."""
    if ema is not None:
        return _final(generating, copy.deepcopy(ema), parts, images)
    if parts.fit_to_data is not None:
        return _final(copy.deepcopy(generating), None, parts, images)
    return generating


def _autocast(cfg: TrainParams, runtime: Runtime) -> Autocast:
    """What the family step enters around its forward and loss: bf16 autocast, or nothing."""
    if cfg.precision != "bf16":
        return contextlib.nullcontext
    return lambda: torch.autocast(runtime.device.type, dtype=torch.bfloat16)


def _check_batch_size(cfg: TrainParams, runtime: Runtime) -> None:
    if cfg.batch_size % runtime.world_size:
        raise GenbenchError(
            f"batch_size = {cfg.batch_size} must divide evenly over "
            f"{runtime.world_size} processes; pick a multiple"
        )


def _progress(total: int, start: int, enabled: bool) -> tqdm:
    return tqdm(
        total=total,
        initial=start,
        disable=not enabled,
        unit="step",
        mininterval=1.0,
        dynamic_ncols=True,
        desc="train",
    )


def learning_rates(optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
    """Each optimizer's current learning rate (its first parameter group's), for the run's
    charts: `lr` for a family with one optimizer, else `lr_<name>` (`lr_g`, `lr_d`)."""
    found = {name: float(opt.param_groups[0]["lr"]) for name, opt in optimizers.items()}
    if len(found) == 1:
        return {"lr": next(iter(found.values()))}
    return {f"lr_{name}": lr for name, lr in found.items()}


def train(
    parts: Parts,
    images: torch.Tensor,
    cfg: TrainParams,
    *,
    seed: int,
    workdir: Path,
    run_hash: str,
    runtime: Runtime,
    log_metrics: LogFn | None = None,
    snapshots: SnapshotKeeper | None = None,
) -> TrainResult:
    """Train for cfg.steps steps on uint8 (N, C, H, W) images, resuming from workdir if possible;
    `snapshots` keeps the weights _final would give at its steps."""
    _check_batch_size(cfg, runtime)
    workdir.mkdir(parents=True, exist_ok=True)
    fmt = torch.channels_last if cfg.channels_last else torch.preserve_format
    for module in parts.modules.values():
        module.to(runtime.device, memory_format=fmt)
    generating = parts.modules[parts.generating]
    ema = _ema(generating, cfg.ema_decay)
    lacks = snapshots.missing if snapshots is not None else None
    state = Resumable(parts, ema, torch.Generator(), run_hash, runtime, lacks=lacks)
    state.restore(workdir / CHECKPOINT, seed, cfg.steps)
    if snapshots is not None and state.step == 0 and runtime.is_main:
        snapshots.clear()  # another run's, if any
    running = {
        k: _wrap(m, cfg, runtime, broadcast=k not in parts.local_buffers)
        for k, m in parts.modules.items()
    }
    batches = Batches(images, cfg, runtime, state.data_rng, fmt)
    autocast = _autocast(cfg, runtime)
    start, curves = state.step, Curves(workdir / CURVES, state.step, runtime.is_main)
    window, started = Window(cfg.batch_size), time.perf_counter()
    with _progress(cfg.steps, start, runtime.is_main) as bar:
        for step in range(start + 1, cfg.steps + 1):
            losses = parts.step(running, parts.optimizers, batches.next(), autocast)
            window.add(_read_losses(losses, step, workdir, runtime))
            if ema is not None:
                ema.update_parameters(generating)
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = window.flush()
                if runtime.is_main:
                    curves.append(row, step)
                    if log_metrics is not None:
                        log_metrics({**row, **learning_rates(parts.optimizers)}, step)
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()}, refresh=False)
            if runtime.is_main and snapshots is not None and step in snapshots.steps:
                seconds = state.seconds + time.perf_counter() - started
                snapshots.keep(step, _snapshot(generating, ema, parts, images), seconds)
            if runtime.is_main and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                state.save(
                    workdir / CHECKPOINT, step, state.seconds + time.perf_counter() - started
                )
            bar.update(1)
    stats = _stats(parts, cfg, runtime, start, state.seconds, time.perf_counter() - started)
    return TrainResult(_final(generating, ema, parts, images), stats)
