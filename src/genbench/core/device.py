"""Which torch device a params value names (training, evaluation and the CLI all resolve it)."""

import re

import torch

from genbench.core.errors import GenbenchError
from genbench.core.system import DEVICE_PATTERN


def device_problem(name: str, key: str = "device") -> str | None:
    """Why device `name` cannot be used on this machine (a line naming `key`), or None."""
    if not re.match(DEVICE_PATTERN, name):
        return f"{key} = {name!r}: not a device; use auto, cpu, cuda, cuda:N or mps"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"{key} = {name!r}: CUDA is not available on this machine; use auto or cpu"
        count = torch.cuda.device_count()
        if ":" in name and int(name.split(":")[1]) >= count:
            return f"{key} = {name!r}: this machine has {count} CUDA device(s) (cuda:0..)"
    if name == "mps" and not torch.backends.mps.is_available():
        return f"{key} = 'mps': MPS is not available on this machine; use auto or cpu"
    return None


def resolve_device(name: str, local_rank: int = 0, key: str = "device") -> torch.device:
    """`auto` -> CUDA when present else CPU; an explicit device that is absent is an error
    naming `key` (the params key or CLI flag that chose it)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    problem = device_problem(name, key)
    if problem:
        raise GenbenchError(problem)
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)
