"""Where training runs: device choice and torchrun/DDP process groups."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from genbench.errors import GenbenchError


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


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` -> CUDA when present else CPU; an explicit device that is absent is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GenbenchError(
                f"device {name!r} requested but CUDA is not available; use auto or cpu"
            )
        return torch.device(f"cuda:{local_rank}") if name == "cuda" else torch.device(name)
    if name == "mps" and not torch.backends.mps.is_available():
        raise GenbenchError("device 'mps' requested but MPS is not available; use auto or cpu")
    return torch.device(name)


def start_runtime(device: str) -> Runtime:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
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
