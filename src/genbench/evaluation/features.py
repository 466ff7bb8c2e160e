"""Features of every image set one evaluation scores, each extracted once: the generated images
and the prepared splits (reference, train for memorisation, val), the splits cached on disk.
"""

import hashlib
import os
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from genbench.core import checkpoint
from genbench.core.store import load_split, read_meta
from genbench.evaluation.extractor import Extractor
from genbench.metrics.fidelity import Features, extract_features, open_extractor

# The modules whose code makes a split's features: with torch's and torch-fidelity's versions,
# part of every cache entry's name, so features made by other code are never read back.
EXTRACTION_MODULES = (
    "genbench.core.store",
    "genbench.evaluation.extractor",
    "genbench.evaluation.features",
    "genbench.metrics.evaluator",
    "genbench.metrics.fidelity",
    "genbench.metrics.spaces",
)


def extraction_code_key() -> str:
    """sha256 (16 hex digits) of the extraction code and the versions of torch, torch-fidelity."""
    digest = hashlib.sha256(f"{torch.__version__} {torch_fidelity.__version__}".encode())
    for name in EXTRACTION_MODULES:
        digest.update(Path(sys.modules[name].__file__).read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class FeatureSets:
    """One extractor, opened once, and the features of the prepared splits it has seen."""

    extractor: Extractor
    module: FeatureExtractorBase
    data: Path  # prepared data folder
    cache: Path  # split features, keyed by the split's and weights' sha256 and the code
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
            weights, code = self.extractor.weights_sha256[:16], extraction_code_key()
            path = self.cache / f"{split}-{sha256[:16]}-{weights}-{code}.npz"
            cached = _load(path) if path.exists() else None
            if cached is not None:
                self.seen[split] = cached
            else:
                self.seen[split] = self.of_images(load_split(self.data, split)[0])
                _save(path, self.seen[split])
        return self.seen[split]


def _load(path: Path) -> Features | None:
    """A cache entry, or None when it cannot be read: it is then renamed `<name>.corrupt-<n>`
    (kept for a look, never read again) with a warning, and the features are made afresh."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            found = Features(
                torch.from_numpy(stored["features"]), torch.from_numpy(stored["logits"])
            )
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
        moved = checkpoint.set_aside(path)
        warnings.warn(
            f"feature cache {path} is unreadable ({type(err).__name__}); moved to {moved.name} "
            "and extracted afresh",
            stacklevel=2,
        )
        return None
    return found


def _save(path: Path, features: Features) -> None:
    """Write atomically: a killed run leaves no half-written cache entry to be trusted later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npz", dir=path.parent)
    with os.fdopen(handle, "wb") as out:
        np.savez(out, features=features.features.numpy(), logits=features.logits.numpy())
    os.replace(tmp, path)
