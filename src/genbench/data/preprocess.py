"""The `preprocess` stage's work: resize, split and store a raw dataset as uint8 NCHW arrays."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.model_selection import train_test_split

from genbench.config.data import DataParams
from genbench.core.errors import DataError
from genbench.core.files import atomic_dir
from genbench.core.imaging import save_grid
from genbench.core.layout import DATA_GRID
from genbench.core.store import write_meta, write_split
from genbench.data.sources import RawDataset, read_raw

RESIZE_CHUNK = 4096


@dataclass
class Prepared:
    """One split's arrays: images (N, C, S, S) uint8, labels (N,) int64 (-1 when unlabelled)."""

    images: np.ndarray
    labels: np.ndarray


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) uint8 so the shorter side is `size`, then centre-crop to size×size.

    Bilinear with antialiasing on float values in [0, 255], rounded back to uint8.
    """
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return images
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    out = F.interpolate(images.float(), size=(new_h, new_w), mode="bilinear", antialias=True)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = out[..., top : top + size, left : left + size]
    return out.round_().clamp_(0, 255).to(torch.uint8)


def resize_all(images: np.ndarray | list[np.ndarray], size: int) -> np.ndarray:
    """(N, H, W, C) array or list of (H, W, C) arrays -> (N, C, size, size) uint8."""
    if isinstance(images, np.ndarray):
        chunks = [
            resize_square(torch.from_numpy(images[i : i + RESIZE_CHUNK]).permute(0, 3, 1, 2), size)
            for i in range(0, len(images), RESIZE_CHUNK)
        ]
    else:
        chunks = [resize_square(torch.from_numpy(a).permute(2, 0, 1)[None], size) for a in images]
    return torch.cat(chunks).contiguous().numpy()


def _seeded_split(
    index: np.ndarray, labels: np.ndarray | None, fraction: float, seed: int, key: str
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) sorted indices: `fraction` of `index` held out, stratified when labelled."""
    stratify = None if labels is None else labels[index]
    if stratify is not None and (np.bincount(stratify).min(initial=len(index)) < 2):
        stratify = None  # a class with one image cannot be stratified
    try:
        kept, held = train_test_split(
            index, test_size=fraction, random_state=seed, stratify=stratify
        )
    except ValueError as err:
        raise DataError(
            f"cannot split {len(index)} images with {key} = {fraction}: {err}"
        ) from None
    return np.sort(kept), np.sort(held)


def split_indices(
    raw: RawDataset, params: DataParams, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) indices. Test: the official split when the source has one, else a
    seeded (stratified when labelled) share. Val: a seeded share of what is left for training,
    so selection (sweeps) never looks at the test split."""
    everything = np.arange(len(raw.images))
    if raw.is_test is not None:
        rest, test = np.flatnonzero(~raw.is_test), np.flatnonzero(raw.is_test)
    else:
        rest, test = _seeded_split(
            everything, raw.labels, params.test_fraction, seed, "data.test_fraction"
        )
    train, val = _seeded_split(rest, raw.labels, params.val_fraction, seed, "data.val_fraction")
    return train, val, test


def preprocess(raw_dir: str | Path, out: str | Path, params: DataParams, seed: int) -> dict:
    """Read raw_dir, write out/{train,val,test}_{images,labels}.npy, meta.json, samples.png."""
    raw_dir, out = Path(raw_dir), Path(out)
    raw = read_raw(raw_dir, params.source, params.max_bad_fraction)
    images = resize_all(raw.images, params.image_size)
    labels = raw.labels if raw.labels is not None else np.full(len(images), -1, np.int64)
    train, val, test = split_indices(raw, params, seed)
    meta = {
        "source": params.source,
        "image_size": params.image_size,
        "channels": int(images.shape[1]),
        "labelled": raw.labels is not None,
        "classes": raw.classes,
        "split": "official" if raw.is_test is not None else "random",
        "seed": seed,
        "test_fraction": None if raw.is_test is not None else params.test_fraction,
        "val_fraction": params.val_fraction,
        "bad_files": raw.bad_files,
        "counts": {"train": int(len(train)), "val": int(len(val)), "test": int(len(test))},
        "shape": {},
        "sha256": {},
    }
    with atomic_dir(out) as tmp:
        for split, index in (("train", train), ("val", val), ("test", test)):
            meta["sha256"].update(write_split(tmp, split, images[index], labels[index]))
            meta["shape"][split] = list(images[index].shape)
        write_meta(tmp, meta)
        save_grid(torch.from_numpy(images[train[:64]]), tmp / DATA_GRID)
    return meta
