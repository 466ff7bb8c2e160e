"""The `evaluate@<name>` and `evaluate_real` stages' work: score one trained model's samples (or
real train images: the floor) against the test split, write metrics, card and figures."""

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from genbench import tracking
from genbench.config.base import Seed, load_params
from genbench.config.evaluate import EvaluateParams
from genbench.data import load_split, read_meta
from genbench.device import resolve_device
from genbench.evaluation.extractor import prepare_extractor
from genbench.evaluation.scoring import (
    evaluate_images,
    protocol_card,
    real_floor_images,
    reconstruction_ssim,
    sample_for_evaluation,
    write_figures,
)
from genbench.files import write_json
from genbench.layout import RUN
from genbench.model_dir import TrainedModel, load_model


@dataclass(frozen=True)
class Paths:
    """Where an evaluation reads and writes (all given by dvc.yaml)."""

    data: Path  # prepared data folder
    evaluator: Path  # trained evaluator folder
    out: Path  # metrics JSON
    card: Path  # protocol card JSON
    cache: Path  # torch-fidelity's reference-feature cache
    figures: Path  # the report's figures of what was scored
    model: Path | None = None  # trained model folder; None for the real-data floor


def run_evaluation(params_file: str | Path, paths: Paths) -> tuple[str, float]:
    """Evaluate, write every output, log to the model's MLflow run; returns (extractor, FID)."""
    params = load_params(params_file, seed=Seed, evaluate=EvaluateParams)
    cfg, seed, meta = params["evaluate"], params["seed"], read_meta(paths.data)
    device = resolve_device(cfg.device, key="evaluate.device")
    if paths.model:  # fail now, not after the work, when the model's tracking server is down
        tracking.check_reachable(tracking.tracking_uri())
    extractor = prepare_extractor(cfg, paths.evaluator, device.type == "cuda")
    reference, _ = load_split(paths.data, "test")
    model, cost = None, None
    if paths.model:
        model = load_model(paths.model, device)
        generated, cost = sample_for_evaluation(model, paths.model, cfg, seed)
    else:  # the floor: real train images, as many as a model gets to show
        generated = real_floor_images(load_split(paths.data, "train")[0], cfg.num_samples, seed)
    key, cuda = f"test-{meta['sha256']['test_images.npy'][:16]}", device.type == "cuda"
    results = evaluate_images(generated, reference, cfg, extractor, seed, cuda, paths.cache, key)
    pairs = _reconstructions(model, reference, cfg.batch_size, results)
    if cost is not None:
        results["cost"] = cost
    test_sha256 = meta["sha256"]["test_images.npy"]
    reference_info = {"split": "test", "size": len(reference), "sha256": test_sha256}
    sampler = model.family.sampler_card(model.params) if model else None
    card = protocol_card(
        cfg, extractor, len(generated), reference_info, seed, meta["image_size"], sampler
    )
    write_figures(paths.figures, generated, pairs)
    write_json(paths.out, results)
    write_json(paths.card, card)
    if paths.model:
        record = json.loads((paths.model / RUN).read_text())
        tracking.log_evaluation(record, results, [paths.out, paths.card])
    return extractor.label, results[extractor.label]["fid"]


def _reconstructions(
    model: TrainedModel | None, reference: torch.Tensor, batch_size: int, results: dict
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """For families that reconstruct: add the test split's reconstruction SSIM to results and
    return (test images, reconstructions) for the figure; else None."""
    if model is None or not model.family.reconstructs:
        return None
    score, recon = reconstruction_ssim(model.net, reference, batch_size)
    results["ssim"]["reconstruction"] = score
    return reference, recon
