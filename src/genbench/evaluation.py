"""One model's (or the real data's) evaluation: feature extractor, torch-fidelity metrics, SSIM,
cost, and the protocol card that says how every number was made.
"""

import contextlib
import importlib.metadata
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch_fidelity.utils import create_feature_extractor

from genbench import checkpoint
from genbench.config.evaluate import EvaluateParams
from genbench.data.store import sha256_file
from genbench.errors import GenbenchError
from genbench.imaging import grid_image
from genbench.layout import RECONSTRUCTIONS_FIGURE, SAMPLES_FIGURE, STATS
from genbench.metrics import ssim
from genbench.metrics.evaluator import register_evaluator
from genbench.metrics.fidelity import fidelity_metrics
from genbench.training.engine import to_unit_range
from genbench.training.outputs import load_model, sample_images, to_uint8

EVALUATOR_WEIGHTS, EVALUATOR_INFO = "weights.pt", "evaluator.json"
# torch-fidelity 0.4 downloads this file into torch hub's checkpoint folder
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
# the figures an evaluation writes for the report
FIGURE_SAMPLES, RECONSTRUCTION_PAIRS = 64, 16
FIGURE_WIDTH = 768  # px at least: tiny images upscaled (nearest) to be seen


@dataclass(frozen=True)
class Extractor:
    """The feature extractor every FID of one evaluation comes from."""

    label: str  # "evaluator" or "inception-v3-compat": the metrics' group name
    fidelity_name: str  # the name torch-fidelity knows it by
    weights_sha256: str
    weights_path: str | None
    resize: str


def prepare_extractor(cfg: EvaluateParams, evaluator_dir: Path, cuda: bool) -> Extractor:
    """Register the trained evaluator, or make sure Inception weights are at hand (fail fast)."""
    if cfg.feature_extractor == "evaluator":
        info_path = evaluator_dir / EVALUATOR_INFO
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        if not info.get("trained"):
            raise GenbenchError(
                info.get(
                    "reason",
                    f"{evaluator_dir} holds no trained evaluator; run `dvc repro train_evaluator`",
                )
            )
        sha = sha256_file(evaluator_dir / EVALUATOR_WEIGHTS)
        name = f"genbench-evaluator-{sha[:16]}"
        state = checkpoint.load(evaluator_dir / EVALUATOR_WEIGHTS)
        register_evaluator(
            name,
            state,
            info["channels"],
            info["num_classes"],
            info["image_size"],
            info["feature_dim"],
        )
        return Extractor("evaluator", name, sha, None, "none: images at data.image_size")
    path = cfg.inception_weights
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # torch.hub's "Downloading ..." line
            create_feature_extractor(
                "inception-v3-compat",
                ["2048"],
                cuda=cuda,
                feature_extractor_weights_path=path,
                verbose=False,
            )
    except Exception as err:  # download and load errors come in many types
        how = f"loaded from {path}" if path else "downloaded"
        raise GenbenchError(
            f"inception-v3-compat weights could not be {how}"
            f" ({type(err).__name__}: {str(err)[:120]}); this needs internet, or set "
            f"evaluate.inception_weights to a local {INCEPTION_FILE}, or use "
            "evaluate.feature_extractor: evaluator"
        ) from None
    file = Path(path) if path else Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    resize = "torch-fidelity: bilinear to 299×299 (TensorFlow-compatible), gray repeated to RGB"
    return Extractor("inception-v3-compat", "inception-v3-compat", sha256_file(file), path, resize)


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
    model_dir: Path, cfg: EvaluateParams, seed: int, device: torch.device
) -> tuple[torch.Tensor, dict, dict | None, torch.nn.Module]:
    """(num_samples uint8 images, cost figures, sampler settings, network) of a trained model."""
    family, net, params, config = load_model(model_dir, device)
    start = time.perf_counter()
    images = sample_images(family, net, params, cfg.num_samples, seed, batch_size=cfg.batch_size)
    seconds = time.perf_counter() - start
    stats = json.loads((model_dir / STATS).read_text())
    cost = {
        "sampling_ms_per_image": 1000 * seconds / cfg.num_samples,
        "parameters": sum(stats["parameter_count"].values()),
        "generator_parameters": sum(p.numel() for p in net.parameters()),
        "train_seconds": stats["wall_seconds"],
        "train_images_per_second": stats["images_per_second"],
    }
    sampler = None
    if config["family"] == "ddpm":
        sampler = {"sampler": params.sampler, "steps": params.sample_steps, "eta": params.eta}
    return images, cost, sampler, net


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
