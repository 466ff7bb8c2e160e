"""Features of every image set one evaluation scores, each extracted once: the generated images
and the prepared splits (reference, train for memorisation, val), the splits cached on disk.
"""

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from genbench.data import load_split, read_meta
from genbench.evaluation.extractor import Extractor
from genbench.metrics.fidelity import Features, extract_features, open_extractor


@dataclass
class FeatureSets:
    """One extractor, opened once, and the features of the prepared splits it has seen."""

    extractor: Extractor
    module: FeatureExtractorBase
    data: Path  # prepared data folder
    cache: Path  # split features, keyed by the split's and the weights' sha256
    cuda: bool
    batch_size: int
    seen: dict[str, Features] = field(default_factory=dict)

    @classmethod
    def open(cls, extractor: Extractor, data: Path, cache: Path, cuda: bool, batch_size: int):
        module = open_extractor(extractor.fidelity_name, cuda, extractor.weights_path)
        return cls(extractor, module, data, cache, cuda, batch_size)

    def of_images(self, images: torch.Tensor) -> Features:
        """Features of uint8 (N, C, H, W) images (generated ones: never cached)."""
        return extract_features(images, self.module, self.cuda, self.batch_size)

    def of_split(self, split: str) -> Features:
        """Features of a prepared split, from the cache when this data and extractor made them."""
        if split not in self.seen:
            sha256 = read_meta(self.data)["sha256"][f"{split}_images.npy"]
            name = f"{split}-{sha256[:16]}-{self.extractor.weights_sha256[:16]}.npz"
            path = self.cache / name
            if path.exists():
                self.seen[split] = _load(path)
            else:
                self.seen[split] = self.of_images(load_split(self.data, split)[0])
                _save(path, self.seen[split])
        return self.seen[split]


def _load(path: Path) -> Features:
    with np.load(path, allow_pickle=False) as stored:
        return Features(torch.from_numpy(stored["features"]), torch.from_numpy(stored["logits"]))


def _save(path: Path, features: Features) -> None:
    """Write atomically: a killed run leaves no half-written cache entry to be trusted later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npz", dir=path.parent)
    with os.fdopen(handle, "wb") as out:
        np.savez(out, features=features.features.numpy(), logits=features.logits.numpy())
    os.replace(tmp, path)
