"""FID, KID and IS through torch-fidelity, computed from features extracted once per image set.

Features come from `extract_features` (a torch-fidelity extractor run over uint8 images); every
metric below takes those features, so one extraction serves FID, KID, IS, precision/recall,
density/coverage and memorisation, against any number of reference splits.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset
from torch_fidelity import register_feature_extractor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset


class ImageSet(Dataset):
    """uint8 (N, C, H, W) images served as torch-fidelity reads them: uint8 (3, H, W) items."""

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"expected uint8 (N, 1|3, H, W) images, got {images.dtype} {tuple(images.shape)}"
            )
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.images[index]
        return image.expand(3, -1, -1) if image.shape[0] == 1 else image  # gray -> 3 channels


@dataclass(frozen=True)
class Features:
    """One image set as the extractor sees it."""

    features: torch.Tensor  # (N, D) float32: FID/KID/precision-recall/memorisation layer
    logits: torch.Tensor  # (N, K) float32: the IS layer

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, index: torch.Tensor) -> "Features":
        return Features(self.features[index], self.logits[index])


def register_network(
    name: str, build: Callable[[], nn.Module], layers: dict[str, str], size: int
) -> None:
    """Register a network of ours with torch-fidelity under `name` (idempotent). `build()` makes
    a module taking torch-fidelity's uint8 (B, 3, size, size) batches to a dict of named
    features; `layers` maps each metric (fid, kid, prc, isc) to the feature it uses."""
    if name in FEATURE_EXTRACTORS_REGISTRY:
        return
    provided = tuple(dict.fromkeys(layers.values()))

    class Network(FeatureExtractorBase):
        def __init__(self, extractor_name, features_list, **_kwargs):
            super().__init__(extractor_name, features_list)
            self.net = build()

        @staticmethod
        def get_provided_features_list():
            return provided

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return layers[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, size, size, dtype=torch.uint8)

        def forward(self, images):
            found = self.net(images)
            return tuple(found[f] for f in self.features_list)

    register_feature_extractor(name, Network)


def open_extractor(name: str, cuda: bool, weights_path: str | None = None) -> FeatureExtractorBase:
    """A torch-fidelity extractor (registered name) giving the FID and the IS layers (one layer
    when they are the same, as for DINOv2, CLIP and the random CNN: such a space has no IS)."""
    cls = FEATURE_EXTRACTORS_REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"feature extractor {name!r} is not registered with torch-fidelity")
    layers = list(
        dict.fromkeys(cls.get_default_feature_layer_for_metric(m) for m in ("fid", "isc"))
    )
    return create_feature_extractor(
        name, layers, cuda=cuda, feature_extractor_weights_path=weights_path, verbose=False
    )


def extract_features(
    images: torch.Tensor, extractor: FeatureExtractorBase, cuda: bool, batch_size: int
) -> Features:
    """Run the extractor once over uint8 (N, 1|3, H, W) images."""
    found = get_featuresdict_from_dataset(
        ImageSet(images), extractor, batch_size, cuda, save_cpu_ram=True, verbose=False
    )
    fid_layer, isc_layer = extractor.features_list[0], extractor.features_list[-1]
    return Features(found[fid_layer].float().cpu(), found[isc_layer].float().cpu())


def kid_subset_size(requested: int, size_a: int, size_b: int) -> int:
    """KID's subset size: at most half the smaller set, so subsets differ on both sides.

    With a subset as large as a whole set, every subset reuses that set and its own sampling
    error enters every estimate alike: the mean is off by it and the spread across subsets misses
    it (the digits' real floor read -0.11 ± 0.04 that way).
    """
    size = min(requested, size_a // 2, size_b // 2)
    if size < 2:
        raise ValueError(
            f"KID needs at least 4 images per set (subsets of 2 from half of each), "
            f"got {size_a} and {size_b}"
        )
    return size


def fid(generated: Features, reference: Features) -> float:
    """Fréchet distance of the two sets' feature Gaussians (Heusel et al. 2017, eq. 6)."""
    stats = [fid_features_to_statistics(f.features.double()) for f in (generated, reference)]
    return float(fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"])


def kid(
    generated: Features, reference: Features, subset_size: int, subsets: int, seed: int
) -> dict[str, float]:
    """KID (Binkowski et al. 2018): mean and standard deviation of the unbiased MMD² with the
    kernel (x·y / d + 1)^3 over `subsets` random pairs of subsets (each drawn without
    replacement within its set), torch-fidelity's defaults."""
    raw = kid_features_to_metric(
        generated.features,
        reference.features,
        kid_subsets=subsets,
        kid_subset_size=subset_size,
        rng_seed=seed,
        verbose=False,
    )
    return {
        "kid_mean": float(raw["kernel_inception_distance_mean"]),
        "kid_std": float(raw["kernel_inception_distance_std"]),
    }


def inception_score(generated: Features, splits: int, seed: int) -> dict[str, float]:
    """IS (Salimans et al. 2016) of the generated set alone: mean and std over `splits` chunks."""
    raw = isc_features_to_metric(generated.logits, splits=splits, shuffle=True, rng_seed=seed)
    return {
        "is_mean": float(raw["inception_score_mean"]),
        "is_std": float(raw["inception_score_std"]),
    }
