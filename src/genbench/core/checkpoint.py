"""The only module that calls torch.save / torch.load: atomic writes, weights_only reads; and
the one that writes and reads the weights users share (safetensors: tensors only, no pickle)."""

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import safetensors.torch
import torch

from genbench.core.errors import GenbenchError


class CheckpointError(GenbenchError):
    """A checkpoint or weights file is missing or cannot be read safely."""


def _write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """`write` into a temp file in the same folder, synced, then renamed onto `path`: readers
    never see a half-written file, and a failure leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(obj: Any, path: str | Path) -> None:
    """torch.save, atomically (temp file + rename): never a half-written checkpoint."""
    _write_atomically(path, lambda handle: torch.save(obj, handle))


def save_weights(state_dict: dict[str, torch.Tensor], path: str | Path) -> str:
    """A network's weights as safetensors, atomically (temp file + rename); returns the hex
    sha256 of the bytes written, for a reader to check later. Tensors are stored contiguous
    (channels_last ones included); loading copies them into any memory format."""
    tensors = {name: value.detach().contiguous() for name, value in state_dict.items()}
    data = safetensors.torch.save(tensors)
    _write_atomically(path, lambda handle: handle.write(data))
    return hashlib.sha256(data).hexdigest()


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A safetensors weights file as a state dict on `device`."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} not found")
    try:
        return safetensors.torch.load_file(path, device=str(device))
    except Exception as err:  # a truncated or foreign file
        raise CheckpointError(f"{path} cannot be loaded ({type(err).__name__}: {err})") from None


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temp files a killed save() left beside `path` (`.last.pt.*.tmp`); returns them.

    Call it where no other process saves `path` (the training's rank 0, before it saves)."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def set_aside(path: str | Path, into: str | Path | None = None) -> Path:
    """Rename an unreadable file to `<name>.corrupt-<n>` beside it, or in the folder `into` on
    the same file system (kept, never deleted)."""
    path = Path(path)
    folder = path.parent if into is None else Path(into)
    n = 1
    while (target := folder / f"{path.name}.corrupt-{n}").exists():
        n += 1
    os.replace(path, target)
    return target


def load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load with weights_only=True (tensors, dicts, lists, numbers, strings only)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise CheckpointError(f"{path} cannot be loaded ({type(err).__name__}: {err})") from None


def source_fingerprint(*extra_files: str | Path) -> str:
    """sha256 over the genbench source files this process imported (plus extra_files).

    Part of a run's resume hash: a checkpoint made by other code is never resumed, so editing a
    model or the engine retrains from scratch, as DVC's rerun of the stage promises.
    """
    # by sys.modules' keys: not every value there is a module with a __name__ (Cython puts a
    # `CythonDotParallel` object there)
    files = sorted(
        Path(m.__file__)
        for name, m in list(sys.modules.items())
        if name.startswith("genbench") and getattr(m, "__file__", None)
    )
    digest = hashlib.sha256()
    for path in [*files, *map(Path, extra_files)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()
