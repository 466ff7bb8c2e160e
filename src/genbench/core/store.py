"""The prepared tensor store: one uint8 NCHW .npy per split, labels, and meta.json with sha256s.

Layout of a prepared folder:
    train_images.npy (N, C, H, W) uint8   train_labels.npy (N,) int64 (-1 when unlabelled)
    val_images.npy, test_images.npy ...   val_labels.npy, test_labels.npy ...
    meta.json        counts, shape, classes, source, split rule, sha256 of every array file
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genbench.core.errors import DataError
from genbench.core.files import sha256_file, write_json
from genbench.core.layout import META

SPLITS = ("train", "val", "test")


def write_split(out: Path, split: str, images: np.ndarray, labels: np.ndarray) -> dict[str, str]:
    """Write one split's arrays; returns {file name: sha256} for meta.json."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    hashes = {}
    for name, array in ((f"{split}_images.npy", images), (f"{split}_labels.npy", labels)):
        np.save(out / name, np.ascontiguousarray(array))
        hashes[name] = sha256_file(out / name)
    return hashes


def write_meta(out: Path, meta: dict[str, Any]) -> None:
    """Write meta.json (sorted keys, so identical data gives an identical file)."""
    write_json(out / META, meta)


def read_meta(data_dir: str | Path) -> dict[str, Any]:
    """Read a prepared folder's meta.json, with a clear error when it is missing or corrupt."""
    path = Path(data_dir) / META
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} not found; run `dvc repro preprocess` first") from None
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path} is not valid JSON ({err}); rerun `dvc repro -f preprocess`"
        ) from None


def _verified_memmap(data_dir: Path, name: str, meta: dict[str, Any]) -> np.ndarray:
    """Memory-map one array after checking its sha256 against meta.json."""
    path = data_dir / name
    expected = meta.get("sha256", {}).get(name)
    if expected is None:
        raise DataError(
            f"{data_dir / META} has no sha256 for {name}; rerun `dvc repro -f preprocess`"
        )
    if not path.exists():
        raise DataError(f"{path} is missing; rerun `dvc repro -f preprocess`") from None
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{path}: sha256 {actual[:12]}… does not match meta.json's {expected[:12]}… "
            "(file altered or truncated); rerun `dvc repro -f preprocess` or `dvc checkout`"
        )
    # Copy-on-write map: pages are read lazily and the file on disk can never be modified.
    return np.load(path, mmap_mode="c")


def load_split(data_dir: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return (images (N, C, H, W) uint8, labels (N,) int64 or None) of a prepared split.

    Both are memory-mapped and checked against the sha256s recorded in meta.json.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    data_dir = Path(data_dir)
    meta = read_meta(data_dir)
    images = torch.from_numpy(_verified_memmap(data_dir, f"{split}_images.npy", meta))
    if not meta.get("labelled", False):
        return images, None
    labels = torch.from_numpy(_verified_memmap(data_dir, f"{split}_labels.npy", meta))
    return images, labels
