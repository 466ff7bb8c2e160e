"""Where training runs: device choice and torchrun/DDP process groups."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from genbench.core.device import resolve_device


@dataclass(frozen=True)
class Runtime:
    """This process's device and its place among DDP ranks (rank 0 alone writes and logs)."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def start_runtime(device: str, key: str = "device") -> Runtime:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA).

    `key` names the params key of `device` in errors (`gan.device`)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank, key)
    if world_size == 1:
        return Runtime(resolved)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    return Runtime(resolved, dist.get_rank(), world_size)


def stop_runtime(runtime: Runtime) -> None:
    """Leave the process group, if any."""
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
