"""FID, KID, IS and precision/recall through torch-fidelity, on uint8 image tensors."""

from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset


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


def fidelity_metrics(
    generated: torch.Tensor,
    reference: torch.Tensor,
    extractor: str,
    *,
    cuda: bool,
    seed: int,
    kid_subset_size: int,
    kid_subsets: int,
    isc_splits: int,
    prc_neighborhood: int,
    batch_size: int,
    weights_path: str | None = None,
    cache_root: str | Path | None = None,
    reference_cache_name: str | None = None,
) -> dict[str, float]:
    """FID, KID (mean, std), IS (mean, std), precision and recall of `generated` vs `reference`.

    IS is a property of `generated` alone. The reference's features are cached under
    reference_cache_name when one is given (it must identify the split, data and extractor).
    """
    subset = min(kid_subset_size, len(generated), len(reference))
    raw = torch_fidelity.calculate_metrics(
        input1=ImageSet(generated),
        input2=ImageSet(reference),
        cuda=cuda,
        fid=True,
        kid=True,
        isc=True,
        prc=True,
        feature_extractor=extractor,
        feature_extractor_weights_path=weights_path,
        kid_subset_size=subset,
        kid_subsets=kid_subsets,
        isc_splits=isc_splits,
        prc_neighborhood=prc_neighborhood,
        batch_size=batch_size,
        rng_seed=seed,
        save_cpu_ram=True,
        cache=reference_cache_name is not None,
        cache_root=None if cache_root is None else str(cache_root),
        input2_cache_name=reference_cache_name,
        verbose=False,
    )
    return {
        "fid": float(raw["frechet_inception_distance"]),
        "kid_mean": float(raw["kernel_inception_distance_mean"]),
        "kid_std": float(raw["kernel_inception_distance_std"]),
        "is_mean": float(raw["inception_score_mean"]),
        "is_std": float(raw["inception_score_std"]),
        "precision": float(raw["precision"]),
        "recall": float(raw["recall"]),
    }
