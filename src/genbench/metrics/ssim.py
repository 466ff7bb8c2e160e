"""SSIM (Wang et al. 2004) via torchmetrics: reconstruction quality and sample diversity.

Plain single-scale SSIM with a Gaussian window: MS-SSIM's default five scales need images of at
least 176 px, far above the 8–64 px these models make.
"""

import torch
from torchmetrics.functional.image import structural_similarity_index_measure


def kernel_size(image_size: int) -> int:
    """The Gaussian window: 11 (the paper's) where it fits, else the largest odd size that does."""
    return min(11, image_size if image_size % 2 else image_size - 1)


def describe(image_size: int) -> str:
    """How SSIM was computed, for the protocol card."""
    return (
        f"ssim (torchmetrics, gaussian window {kernel_size(image_size)}, sigma 1.5, range [0, 1])"
    )


def mean_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM of matching pairs of uint8 (N, C, H, W) images."""
    x, y = a.float() / 255, b.float() / 255
    value = structural_similarity_index_measure(
        x, y, data_range=1.0, kernel_size=kernel_size(a.shape[-1]), reduction="elementwise_mean"
    )
    return float(value)


def diversity_ssim(images: torch.Tensor, pairs: int, generator: torch.Generator) -> float:
    """Mean SSIM of `pairs` random pairs of distinct images: near 1 means near-identical samples."""
    n = len(images)
    first = torch.randint(n, (pairs,), generator=generator)
    second = (first + torch.randint(1, n, (pairs,), generator=generator)) % n  # never the same
    return mean_ssim(images[first], images[second])
