"""Nearest-neighbour metrics in an extractor's feature space: precision, recall, density and
coverage on equal-size sets (prdc), and memorisation (how close samples sit to training images).
"""

import contextlib
import io
from dataclasses import dataclass

import numpy as np
import torch
from prdc import compute_prdc

PRDC = ("precision", "recall", "density", "coverage")


def equal_size_prdc(
    generated: torch.Tensor,
    reference: torch.Tensor,
    k: int,
    repeats: int,
    seed: int,
    max_size: int,
) -> dict[str, float]:
    """Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020),
    each the mean (and std) over `repeats` draws of equal-size sets.

    Recall and coverage grow with the generated set's size and precision with the reference's,
    so both sides are cut to n = min(len(generated), len(reference), max_size) images, drawn
    afresh (seeded) each repeat; a side of exactly n images is used whole every time.
    generated, reference: (N, D) features of the same extractor layer.
    """
    n = equal_size(len(generated), len(reference), max_size, k)
    rng = np.random.default_rng(seed)
    fake, real = generated.numpy().astype(np.float32), reference.numpy().astype(np.float32)
    draws = []
    for _ in range(repeats):
        pick_fake, pick_real = (rng.permutation(len(x))[:n] for x in (fake, real))
        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
            draws.append(compute_prdc(real[pick_real], fake[pick_fake], nearest_k=k))
    out = {}
    for name in PRDC:
        values = np.array([float(d[name]) for d in draws])
        out[name], out[f"{name}_std"] = float(values.mean()), float(values.std())
    return out


def equal_size(size_a: int, size_b: int, max_size: int, k: int) -> int:
    """The common set size of equal_size_prdc; its k-th neighbour must exist."""
    n = min(size_a, size_b, max_size)
    if n <= k:
        raise ValueError(
            f"precision/recall with prc_neighborhood = {k} needs more than {k} images per set, "
            f"got {size_a} and {size_b}; lower evaluate.prc_neighborhood"
        )
    return n


def nearest(
    queries: torch.Tensor, pool: torch.Tensor, batch: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each query's nearest pool row, exact Euclidean, in batches.

    Not the matrix-product shortcut of torch.cdist: it is off by ~1e-3 for identical rows,
    and an exact copy must read as distance 0.
    """
    queries, pool, exact = queries.double(), pool.double(), "donot_use_mm_for_euclid_dist"
    found = [
        torch.cdist(queries[i : i + batch], pool, compute_mode=exact).min(1)
        for i in range(0, len(queries), batch)
    ]
    return torch.cat([f.values for f in found]), torch.cat([f.indices for f in found])


@dataclass(frozen=True)
class Memorisation:
    """How close samples sit to their nearest training image, against held-out test images."""

    copy_rate: float  # share of samples at most `threshold` from a training image
    threshold: float  # the percentile of test-to-train nearest distances
    median_sample_to_train: float
    median_test_to_train: float
    distances: torch.Tensor  # (N,) each sample's distance to its nearest training image
    neighbours: torch.Tensor  # (N,) index of that training image

    def numbers(self) -> dict[str, float]:
        """The metrics-file entries."""
        keep = ("copy_rate", "threshold", "median_sample_to_train", "median_test_to_train")
        return {key: float(getattr(self, key)) for key in keep}


def memorisation(
    generated: torch.Tensor, test: torch.Tensor, train: torch.Tensor, percentile: float
) -> Memorisation:
    """Copy rate: the share of samples no farther from their nearest training image than the
    `percentile`-th percentile of the same distance for held-out test images (at most, not
    below: an exact copy counts even when a few test images duplicate training images).

    A model that generalises places samples as far from the training set as unseen real images
    are: its copy rate is about percentile / 100; one that returns training images scores 1.
    generated, test, train: (N, D) features of the same extractor layer.
    """
    distances, neighbours = nearest(generated, train)
    baseline, _ = nearest(test, train)
    threshold = float(np.percentile(baseline.numpy(), percentile))
    return Memorisation(
        copy_rate=float((distances <= threshold).double().mean()),
        threshold=threshold,
        median_sample_to_train=float(distances.median()),
        median_test_to_train=float(baseline.median()),
        distances=distances,
        neighbours=neighbours,
    )
