"""Scoring images: fidelity metrics against the reference (and val) split, memorisation, SSIM,
a model's cost, and the figures of what was scored (card.py says how every number was made).
"""

import time
from pathlib import Path
from typing import Any

import torch

from genbench.config.evaluate import EvaluateParams
from genbench.core.imaging import grid_image, to_uint8, to_unit_range
from genbench.core.layout import NEAREST_FIGURE, RECONSTRUCTIONS_FIGURE, SAMPLES_FIGURE
from genbench.core.metric_registry import EXTRACTOR, SCORES
from genbench.core.store import read_meta
from genbench.evaluation.features import FeatureSets
from genbench.families.common.model_dir import TrainedModel, sample_images
from genbench.metrics import ssim
from genbench.metrics.fidelity import Features, fid, inception_score, kid, kid_subset_size
from genbench.metrics.neighbours import Memorisation, equal_size_prdc, memorisation

# the figures an evaluation writes for the report
FIGURE_SAMPLES, RECONSTRUCTION_PAIRS = 64, 16
FIGURE_WIDTH = 768  # px at least: tiny images upscaled (nearest) to be seen


def evaluate_images(
    generated: torch.Tensor,
    test: torch.Tensor,
    cfg: EvaluateParams,
    sets: FeatureSets,
    seed: int,
    memorise: bool,
) -> tuple[dict[str, Any], Memorisation | None]:
    """Every number of one evaluation, from one feature extraction per image set: fidelity
    against the reference split (`scores`; `extractor` names the space), FID/KID against the
    val split when the data has one, memorisation (`memorise`: not for real train images, whose
    nearest training image is themselves), and the diversity SSIMs (test: uint8 test images).
    """
    features = sets.of_images(generated)
    results: dict[str, Any] = {
        EXTRACTOR: sets.extractor.label,
        SCORES: fidelity_scores(features, sets.of_split(cfg.reference_split), cfg, seed),
    }
    if "val" in read_meta(sets.data)["counts"]:  # sweeps rank on it; test stays for the report
        results["val"] = kid_and_fid(features, sets.of_split("val"), cfg, seed)
    memo = None
    if memorise:
        pool, held_out = sets.of_split("train").features, sets.of_split("test").features
        memo = memorisation(features.features, held_out, pool, cfg.memorisation_percentile)
        results["memorisation"] = memo.numbers()
    rng = torch.Generator().manual_seed(seed)
    results["ssim"] = {
        "diversity": ssim.diversity_ssim(generated, cfg.ssim_pairs, rng),
        "diversity_real": ssim.diversity_ssim(test, cfg.ssim_pairs, rng),
    }
    return results, memo


def kid_and_fid(
    generated: Features, reference: Features, cfg: EvaluateParams, seed: int
) -> dict[str, float]:
    """FID and KID (subsets of at most half the smaller set) of two feature sets."""
    size = kid_subset_size(cfg.kid_subset_size, len(generated), len(reference))
    found = kid(generated, reference, size, cfg.kid_subsets, seed)
    return {"fid": fid(generated, reference), **found}


def fidelity_scores(
    generated: Features, reference: Features, cfg: EvaluateParams, seed: int, with_is: bool = True
) -> dict[str, float]:
    """FID, KID, IS (`with_is`), and precision/recall/density/coverage on equal-size sets
    (mean ± std)."""
    prdc = equal_size_prdc(
        generated.features,
        reference.features,
        cfg.prc_neighborhood,
        cfg.prc_repeats,
        seed,
        cfg.prc_max_size,
    )
    found = kid_and_fid(generated, reference, cfg, seed)
    if with_is:
        found |= inception_score(generated, cfg.isc_splits, seed)
    return {**found, **prdc}


def sample_for_evaluation(
    model: TrainedModel, cfg: EvaluateParams, seed: int
) -> tuple[torch.Tensor, dict]:
    """(num_samples uint8 images, cost figures) of a trained model.

    The training figures come from config.json, which holds no timings: training's wall
    seconds (train_stats.json) are not a dependency of evaluation, so a retraining that
    reproduces the same weights does not rerun it (the compare stage adds them)."""
    start = time.perf_counter()
    images = sample_images(
        model.family, model.net, model.params, cfg.num_samples, seed, batch_size=cfg.batch_size
    )
    seconds = time.perf_counter() - start
    budget = model.config["budget"]
    return images, {
        "sampling_ms_per_image": 1000 * seconds / cfg.num_samples,
        "parameters": sum(model.config["parameter_count"].values()),
        "generator_parameters": sum(p.numel() for p in model.net.parameters()),
        "train_steps": budget["steps"],
        "train_images": budget["images_seen"],
        "train_flops": budget["train_flops"],
    }


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
    folder: Path,
    samples: torch.Tensor,
    pairs: tuple[torch.Tensor, torch.Tensor] | None,
    nearest: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> None:
    """The report's pictures of what was scored: a grid of the first evaluated samples; for
    models that reconstruct, test images (top row) above their reconstructions (bottom row);
    for models, the samples nearest a training image (top) above that image (bottom).
    """
    folder.mkdir(parents=True, exist_ok=True)
    grid_image(samples[:FIGURE_SAMPLES], min_width=FIGURE_WIDTH // 2).save(folder / SAMPLES_FIGURE)
    for name, found in ((RECONSTRUCTIONS_FIGURE, pairs), (NEAREST_FIGURE, nearest)):
        if found is not None:
            top, bottom = (images[:RECONSTRUCTION_PAIRS] for images in found)
            pictures = torch.cat([top, bottom])  # 2 rows: each image above its partner
            grid_image(pictures, nrow=len(top), min_width=FIGURE_WIDTH).save(folder / name)


def nearest_pairs(
    samples: torch.Tensor, train: torch.Tensor, memo: Memorisation
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the samples closest to a training image, closest first; those training images)."""
    order = memo.distances.argsort()[:RECONSTRUCTION_PAIRS]
    return samples[order], train[memo.neighbours[order]]


def floor_split(cfg: EvaluateParams) -> str:
    """Where the real-data floor's images come from: the split the reference is not."""
    return "test" if cfg.reference_split == "train" else "train"


def real_floor_images(train: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """`count` seeded-random real train images (all of them when there are fewer)."""
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    return train[pick[:count]].clone()
