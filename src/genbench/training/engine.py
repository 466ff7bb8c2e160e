"""The step-based training loop every family shares.

A family hands over `Parts`: its networks, optimizers, which network generates (EMA-averaged and
sampled from), and a step function. The loop draws batches from the in-memory uint8 train split,
runs the step under the chosen device/precision/compile/DDP setup, keeps the EMA, guards against
NaN/inf, logs averaged losses, and writes resumable checkpoints (resume.py).
"""

import contextlib
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

from genbench.config.train import TrainParams
from genbench.errors import GenbenchError
from genbench.families.base import Parts
from genbench.imaging import to_unit_range
from genbench.layout import CURVES
from genbench.training.progress import Curves, Window
from genbench.training.resume import (
    CHECKPOINT,
    Resumable,
    TrainingDivergedError,
    kept_checkpoint,
)
from genbench.training.runtime import Runtime

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


def _read_losses(losses: dict[str, torch.Tensor], step: int, workdir: Path) -> dict[str, float]:
    """The step's losses as floats, after one device sync for all (float() per loss: one each)."""
    stacked = torch.stack([v.detach().float() for v in losses.values()]).tolist()
    values = dict(zip(losses, stacked, strict=True))
    _check_finite(values, step, workdir)
    return values


def _ema(generating: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of the generating network's weights (None: decay 0)."""
    if decay <= 0:
        return None
    return AveragedModel(generating, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _final(generating: nn.Module, ema: AveragedModel | None, parts: Parts) -> nn.Module:
    """The network to keep: the EMA's (batch-norm statistics refreshed), else the raw one."""
    if ema is None:
        return generating
    if parts.finalize_ema is not None:
        parts.finalize_ema(ema.module)
    return ema.module


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
) -> TrainResult:
    """Train for cfg.steps steps on uint8 (N, C, H, W) images, resuming from workdir if possible."""
    _check_batch_size(cfg, runtime)
    workdir.mkdir(parents=True, exist_ok=True)
    fmt = torch.channels_last if cfg.channels_last else torch.preserve_format
    for module in parts.modules.values():
        module.to(runtime.device, memory_format=fmt)
    generating = parts.modules[parts.generating]
    ema = _ema(generating, cfg.ema_decay)
    state = Resumable(parts, ema, torch.Generator(), run_hash, runtime)
    state.restore(workdir / CHECKPOINT, seed, cfg.steps)
    running = {k: _wrap(m, cfg, runtime) for k, m in parts.modules.items()}
    batches = Batches(images, cfg, runtime, state.data_rng, fmt)
    bf16 = cfg.precision == "bf16"
    amp = torch.autocast(runtime.device.type, dtype=torch.bfloat16) if bf16 else None
    start, curves = state.step, Curves(workdir / CURVES, state.step, runtime.is_main)
    window, started = Window(cfg.batch_size), time.perf_counter()
    with _progress(cfg.steps, start, runtime.is_main) as bar:
        for step in range(start + 1, cfg.steps + 1):
            with amp or contextlib.nullcontext():
                losses = parts.step(running, parts.optimizers, batches.next())
            window.add(_read_losses(losses, step, workdir))
            if ema is not None:
                ema.update_parameters(generating)
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = window.flush()
                if runtime.is_main:
                    curves.append(row, step)
                    if log_metrics is not None:
                        log_metrics(row, step)
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()}, refresh=False)
            if runtime.is_main and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                state.save(
                    workdir / CHECKPOINT, step, state.seconds + time.perf_counter() - started
                )
            bar.update(1)
    stats = _stats(parts, cfg, runtime, start, state.seconds, time.perf_counter() - started)
    return TrainResult(_final(generating, ema, parts), stats)
