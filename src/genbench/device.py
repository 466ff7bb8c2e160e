"""Which torch device a params value names (training, evaluation and the CLI all resolve it)."""

import torch

from genbench.errors import GenbenchError


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
