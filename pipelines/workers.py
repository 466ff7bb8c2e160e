"""How many stages run at once, and what each worker gets: torch threads and a CUDA device.

No prefect here. One setting, `orchestration.workers` (`auto` or a number): each worker's torch
threads are the cores divided among the workers (OMP_NUM_THREADS, which torch reads when it
starts), and on a machine with CUDA devices each worker sees one of them (CUDA_VISIBLE_DEVICES),
several workers sharing a device.

Threads matter for the numbers, not only the speed: on CPU a float sum split over two threads
is added in another order than on one, so a stage's outputs are bit-identical for the same
threads per stage (measured: a DDPM's weights differ between 1 and 2 threads, and are equal
run to run at either).
"""

import os
from dataclasses import dataclass

# `auto` on a machine with CUDA devices: workers per device, each with at least GPU_THREADS cores.
# Measured on one H200 with 16 cores (benchmarks/gpu_workers.py, docs/benchmarks.md): three
# default GAN trainings took 73.5 s one after the other on one worker and 36.8 s on three
# workers sharing the device (2.0x). These small networks leave most of a GPU idle; each
# stage's time goes to its process's start, Python and kernel launches.
PER_DEVICE = 3
GPU_THREADS = 4


@dataclass(frozen=True)
class Slot:
    """One worker: the stages it runs see these threads and this device."""

    index: int
    threads: int
    cuda_device: int | None = None  # the device index it sees as cuda:0, None on CPU

    def env(self) -> dict[str, str]:
        """The environment a stage run by this worker gets."""
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if self.cuda_device is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(self.cuda_device)
        return env

    def describe(self) -> str:
        device = f", cuda device {self.cuda_device}" if self.cuda_device is not None else ""
        return f"worker {self.index}: {self.threads} torch thread(s){device}"


def available_cores() -> int:
    """The cores this process may use (its CPU affinity, which containers and taskset limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity
        return os.cpu_count() or 1


def cuda_devices() -> int:
    """CUDA devices torch sees here (0 without CUDA); torch is imported only to ask."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan(workers: int | str, cores: int, gpus: int) -> list[Slot]:
    """The workers for `orchestration.workers`.

    `auto`: where there are CUDA devices, PER_DEVICE workers on each (fewer where the cores do
    not give each GPU_THREADS, at least one per device); else one per core (these small networks
    keep one thread busy: two processes of one thread each beat one of two, issue 27). A number:
    that many. Threads: the cores shared out evenly, at least one. Devices are dealt
    round-robin, so the workers on one device are as few as they can be.
    """
    if workers == "auto":
        count = gpus * max(1, min(PER_DEVICE, cores // (gpus * GPU_THREADS))) if gpus else cores
    else:
        count = int(workers)
    if count < 1:
        raise ValueError(f"workers must be at least 1, got {workers!r}")
    threads = max(1, cores // count)
    return [Slot(i, threads, (i % gpus) if gpus else None) for i in range(count)]


def describe(slots: list[Slot], cores: int) -> str:
    """One line for the log: how many workers, threads and devices, from how many cores."""
    devices = sorted({slot.cuda_device for slot in slots if slot.cuda_device is not None})
    on = f", CUDA devices {devices}" if devices else ", CPU"
    return f"{len(slots)} worker(s) × {slots[0].threads} torch thread(s) ({cores} cores{on})"
