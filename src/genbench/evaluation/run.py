"""The `evaluate@<name>` and `evaluate_real` stages' work: score one trained model's samples (or
real images: the floor) against the reference split, write metrics, card and figures."""

from dataclasses import dataclass
from pathlib import Path

import torch

from genbench import tracking
from genbench.config.base import Seed, load_params
from genbench.config.evaluate import EvaluateParams
from genbench.core.device import resolve_device
from genbench.core.files import write_json
from genbench.core.imaging import grid_image
from genbench.core.metric_registry import SCORES, SPACES
from genbench.core.store import load_split, read_meta
from genbench.evaluation.card import protocol_card, protocol_id
from genbench.evaluation.curve import score_curve, score_floor
from genbench.evaluation.extractor import Extractor, prepare_extractor, prepare_space
from genbench.evaluation.features import FeatureSets
from genbench.evaluation.scoring import (
    FIGURE_SAMPLES,
    evaluate_images,
    fidelity_scores,
    floor_split,
    nearest_pairs,
    real_floor_images,
    reconstruction_ssim,
    sample_for_evaluation,
    write_figures,
)
from genbench.families.common.model_dir import TrainedModel, load_model


@dataclass(frozen=True)
class Paths:
    """Where an evaluation reads and writes (all given by dvc.yaml)."""

    data: Path  # prepared data folder
    evaluator: Path  # trained evaluator folder
    out: Path  # metrics JSON
    card: Path  # protocol card JSON
    cache: Path  # features of the prepared splits, per split and extractor
    figures: Path  # the report's figures of what was scored
    model: Path | None = None  # trained model folder; None for the real-data floor


def run_evaluation(params_file: str | Path, paths: Paths) -> tuple[str, float]:
    """Evaluate and write every output inside an MLflow run of its own, nested under the model's
    training run (none for the real floor); returns (extractor, FID)."""
    params = load_params(params_file, seed=Seed, evaluate=EvaluateParams)
    cfg, seed, meta = params["evaluate"], params["seed"], read_meta(paths.data)
    device = resolve_device(cfg.device, key="evaluate.device")
    if paths.model:  # fail now, not after the work, when the model's tracking server is down
        tracking.check_reachable(tracking.tracking_uri())
    cuda = device.type == "cuda"
    extractor = prepare_extractor(cfg, paths.evaluator, cuda)
    spaces = [prepare_space(s, cfg, paths.evaluator, meta, cuda) for s in cfg.feature_spaces]
    # the training run and its model, found by the weights' sha256 (None: the real floor)
    with tracking.evaluation_run(paths.model, params_file) as record:
        logging = record is not None
        results = _evaluate(cfg, seed, meta, paths, device, extractor, spaces, logging)
        if logging:
            evaluation = tracking.Evaluation(
                cfg.model_dump(mode="json"),
                results,
                paths.out,
                paths.card,
                paths.data,
                meta,
            )
            tracking.log_evaluation(record, evaluation)
    return extractor.label, results[SCORES]["fid"]


def _evaluate(cfg, seed, meta, paths: Paths, device, extractor, spaces, logging: bool) -> dict:
    """The evaluation's work: sample (or take real images), score in every space, write the
    metrics, card and figures; returns the metrics. `logging`: an MLflow run is open (each
    snapshot's sample grid goes into it)."""
    cuda = device.type == "cuda"
    test, _ = load_split(paths.data, "test")  # reconstructions and the real diversity SSIM
    floor = None if paths.model else floor_split(cfg)
    model, cost = None, None
    if paths.model:
        model = load_model(paths.model, device, snapshots=True)  # the curve scores them
        seed = model.config["seed"]  # each seed's model samples with its own seed
        generated, cost = sample_for_evaluation(model, cfg, seed)
    else:  # the floor: real images outside the reference, as many as a model gets to show
        generated = real_floor_images(load_split(paths.data, floor)[0], cfg.num_samples, seed)
    sets = FeatureSets.open(extractor, paths.data, paths.cache, cuda, cfg.batch_size)
    results, memo = evaluate_images(generated, test, cfg, sets, seed, memorise=bool(model))
    for space in spaces:  # after the primary space's numbers: they stay as they were
        scores = score_in_space(space, generated, cfg, paths, cuda, seed)
        results.setdefault(SPACES, {})[space.label] = scores
    pairs = _reconstructions(model, test, cfg.batch_size, results)
    if cost is not None:
        results["cost"] = cost
    if model is not None:
        shown = _log_grid if logging else None
        curve = score_curve(model, paths.model, generated, cfg, sets, seed, shown)
        if curve is not None:
            results["curve"] = curve
    elif cfg.curve_samples:
        results["curve_floor"] = score_floor(generated, cfg, sets, seed)
    sampler = model.family.sampler_card(model.params) if model else None
    card = protocol_card(cfg, extractor, len(generated), meta, seed, sampler, floor, spaces)
    nearest = None if memo is None else nearest_pairs(generated, _train(paths.data), memo)
    results["protocol"] = {"id": protocol_id(card)}
    write_figures(paths.figures, generated, pairs, nearest)
    write_json(paths.out, results)
    write_json(paths.card, card)
    return results


def _log_grid(step: int, images: torch.Tensor) -> None:
    """A snapshot's first scored samples, as a grid, into the evaluation's run at its step."""
    tracking.log_snapshot_grid(grid_image(images[:FIGURE_SAMPLES], min_width=256), step)


def score_in_space(
    space: Extractor,
    generated: torch.Tensor,
    cfg: EvaluateParams,
    paths: Paths,
    cuda: bool,
    seed: int,
) -> dict[str, float]:
    """FID, KID and precision/recall/density/coverage of the images in one more feature space
    (no IS: these spaces have no classes, or are not the primary one)."""
    sets = FeatureSets.open(space, paths.data, paths.cache, cuda, cfg.batch_size)
    reference = sets.of_split(cfg.reference_split)
    return fidelity_scores(sets.of_images(generated), reference, cfg, seed, with_is=False)


def _train(data: Path) -> torch.Tensor:
    return load_split(data, "train")[0]


def _reconstructions(
    model: TrainedModel | None, test: torch.Tensor, batch_size: int, results: dict
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """For families that reconstruct: add the test split's reconstruction SSIM to results and
    return (test images, reconstructions) for the figure; else None."""
    if model is None or not model.family.reconstructs:
        return None
    score, recon = reconstruction_ssim(model.net, test, batch_size)
    results["ssim"]["reconstruction"] = score
    return test, recon
