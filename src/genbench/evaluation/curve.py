"""Quality against compute: FID and KID of a model's snapshots (the weights at fractions of its
training budget), each from `evaluate.curve_samples` images, scored like the final evaluation
(same extractor, reference split, seed and KID rule) but on fewer images, so the points of a
curve compare with each other and with the real-data floor scored at the same count, not with
the full-protocol numbers (FID's bias grows as the sample count falls; KID has none).
"""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from genbench.config.evaluate import EvaluateParams
from genbench.core import checkpoint
from genbench.core.layout import SNAPSHOT_INDEX, SNAPSHOTS
from genbench.evaluation.features import FeatureSets
from genbench.evaluation.scoring import kid_and_fid
from genbench.families.common.model_dir import TrainedModel, sample_images

POINT_KEYS = ("fraction", "step", "flops", "images_seen")  # from the snapshot index


def curve_size(cfg: EvaluateParams) -> int:
    """Images per curve point: curve_samples, at most the full evaluation's count."""
    return min(cfg.curve_samples, cfg.num_samples)


def read_snapshot_index(model_dir: Path) -> list[dict]:
    """The model's snapshot index (training writes it); [] for a model trained before
    snapshots existed."""
    path = model_dir / SNAPSHOTS / SNAPSHOT_INDEX
    return json.loads(path.read_text()) if path.exists() else []


def _snapshot_images(
    model: TrainedModel, weights: Path, count: int, seed: int, batch_size: int
) -> torch.Tensor:
    net = copy.deepcopy(model.net)  # the final network's architecture, the snapshot's weights
    net.load_state_dict(checkpoint.load_weights(weights, next(net.parameters()).device))
    return sample_images(model.family, net, model.params, count, seed, batch_size=batch_size)


def score_curve(
    model: TrainedModel,
    model_dir: Path,
    final_images: torch.Tensor,
    cfg: EvaluateParams,
    sets: FeatureSets,
    seed: int,
    shown: Callable[[int, torch.Tensor], None] | None = None,
) -> dict[str, Any] | None:
    """The curve of one model: one point per snapshot, scored on curve_size images drawn with
    the model's seed (the last point: the first of the final evaluation's samples). None when
    the curve is off (curve_samples 0) or the model has no snapshots. `shown(step, images)`
    gets each point's scored images (the sample grids of the evaluation's MLflow run)."""
    index, count = read_snapshot_index(model_dir), curve_size(cfg)
    if not index or not count:
        return None
    reference = sets.of_split(cfg.reference_split)
    scored: dict[str | None, dict[str, float]] = {}  # per weights file (None: the final ones)
    points = []
    for row in tqdm(index, desc="curve", unit="snapshot", mininterval=1.0, dynamic_ncols=True):
        if row["file"] not in scored:
            if row["file"] is None:
                images = final_images[:count]
            else:
                weights = model_dir / SNAPSHOTS / row["file"]
                images = _snapshot_images(model, weights, count, seed, cfg.batch_size)
            scored[row["file"]] = kid_and_fid(sets.of_images(images), reference, cfg, seed)
            if shown is not None:
                shown(int(row["step"]), images)
        points.append({**{key: row[key] for key in POINT_KEYS}, **scored[row["file"]]})
    return {"extractor": sets.extractor.label, "samples": count, "points": points}


def score_floor(real: torch.Tensor, cfg: EvaluateParams, sets: FeatureSets, seed: int) -> dict:
    """The real-data floor at the curve's image count: the first curve_size floor images."""
    count = curve_size(cfg)
    reference = sets.of_split(cfg.reference_split)
    found = kid_and_fid(sets.of_images(real[:count]), reference, cfg, seed)
    return {"extractor": sets.extractor.label, "samples": count, **found}
