"""Scoring images: torch-fidelity metrics and SSIM against a reference split, a model's cost,
the protocol card that says how every number was made, and the figures of what was scored.
"""

import importlib.metadata
import json
import time
from pathlib import Path
from typing import Any

import torch

from genbench.config.evaluate import EvaluateParams
from genbench.evaluation.extractor import Extractor
from genbench.imaging import grid_image, to_uint8, to_unit_range
from genbench.layout import RECONSTRUCTIONS_FIGURE, SAMPLES_FIGURE, STATS
from genbench.metrics import ssim
from genbench.metrics.fidelity import fidelity_metrics
from genbench.model_dir import TrainedModel, sample_images

# the figures an evaluation writes for the report
FIGURE_SAMPLES, RECONSTRUCTION_PAIRS = 64, 16
FIGURE_WIDTH = 768  # px at least: tiny images upscaled (nearest) to be seen


def evaluate_images(
    generated: torch.Tensor,
    reference: torch.Tensor,
    cfg: EvaluateParams,
    extractor: Extractor,
    seed: int,
    cuda: bool,
    cache_root: Path,
    reference_key: str,
) -> dict[str, Any]:
    """Fidelity metrics (grouped under the extractor's name) and the diversity SSIMs."""
    fidelity = fidelity_metrics(
        generated,
        reference,
        extractor.fidelity_name,
        cuda=cuda,
        seed=seed,
        kid_subset_size=cfg.kid_subset_size,
        kid_subsets=cfg.kid_subsets,
        isc_splits=cfg.isc_splits,
        prc_neighborhood=cfg.prc_neighborhood,
        batch_size=cfg.batch_size,
        weights_path=extractor.weights_path,
        cache_root=cache_root,
        reference_cache_name=f"genbench-{reference_key}-{extractor.weights_sha256[:16]}",
    )
    rng = torch.Generator().manual_seed(seed)
    similarity = {
        "diversity": ssim.diversity_ssim(generated, cfg.ssim_pairs, rng),
        "diversity_real": ssim.diversity_ssim(reference, cfg.ssim_pairs, rng),
    }
    return {extractor.label: fidelity, "ssim": similarity}


def protocol_card(
    cfg: EvaluateParams,
    extractor: Extractor,
    generated_count: int,
    reference: dict,
    seed: int,
    image_size: int,
    sampler: dict | None,
) -> dict[str, Any]:
    """Everything needed to reproduce (or refuse to compare) the numbers."""
    versions = {
        pkg: importlib.metadata.version(pkg)
        for pkg in ("torch", "torch-fidelity", "torchmetrics", "diffusers")
    }
    return {
        "num_samples": generated_count,
        "reference": reference,
        "feature_extractor": {"name": extractor.label, "weights_sha256": extractor.weights_sha256},
        "resize": extractor.resize,
        "seeds": {"sampling": seed, "kid_subsets_and_ssim_pairs": seed},
        "sampler": sampler,
        "kid": {
            "subset_size": min(cfg.kid_subset_size, generated_count, reference["size"]),
            "subsets": cfg.kid_subsets,
        },
        "isc_splits": cfg.isc_splits,
        "prc_neighborhood": cfg.prc_neighborhood,
        "ssim": ssim.describe(image_size),
        "ssim_pairs": cfg.ssim_pairs,
        "versions": versions,
    }


def sample_for_evaluation(
    model: TrainedModel, model_dir: Path, cfg: EvaluateParams, seed: int
) -> tuple[torch.Tensor, dict]:
    """(num_samples uint8 images, cost figures) of a trained model."""
    start = time.perf_counter()
    images = sample_images(
        model.family, model.net, model.params, cfg.num_samples, seed, batch_size=cfg.batch_size
    )
    seconds = time.perf_counter() - start
    stats = json.loads((model_dir / STATS).read_text())
    cost = {
        "sampling_ms_per_image": 1000 * seconds / cfg.num_samples,
        "parameters": sum(stats["parameter_count"].values()),
        "generator_parameters": sum(p.numel() for p in model.net.parameters()),
        "train_seconds": stats["wall_seconds"],
        "train_images_per_second": stats["images_per_second"],
    }
    return images, cost


@torch.no_grad()
def reconstruction_ssim(
    net: torch.nn.Module, images: torch.Tensor, batch_size: int
) -> tuple[float, torch.Tensor]:
    """(mean SSIM, uint8 reconstructions) of uint8 images passed through the model, in batches."""
    device = next(net.parameters()).device
    recon = torch.cat(
        [
            to_uint8(net.reconstruct(to_unit_range(images[i : i + batch_size]).to(device)))
            for i in range(0, len(images), batch_size)
        ]
    )
    return ssim.mean_ssim(images, recon), recon


def write_figures(
    folder: Path, samples: torch.Tensor, pairs: tuple[torch.Tensor, torch.Tensor] | None
) -> None:
    """The report's pictures of what was scored: a grid of the first evaluated samples and, for
    models that reconstruct, test images (top row) above their reconstructions (bottom row).
    """
    folder.mkdir(parents=True, exist_ok=True)
    grid_image(samples[:FIGURE_SAMPLES], min_width=FIGURE_WIDTH // 2).save(folder / SAMPLES_FIGURE)
    if pairs is not None:
        inputs, outputs = (images[:RECONSTRUCTION_PAIRS] for images in pairs)
        pictures = torch.cat([inputs, outputs])  # 2 rows: inputs above their reconstructions
        grid = grid_image(pictures, nrow=len(inputs), min_width=FIGURE_WIDTH)
        grid.save(folder / RECONSTRUCTIONS_FIGURE)


def real_floor_images(train: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """`count` seeded-random real train images (all of them when there are fewer)."""
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    return train[pick[:count]].clone()
