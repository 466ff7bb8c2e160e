"""The offline evaluator's folder (models/evaluator/): written by `train_evaluator`, read by every
evaluation. weights.pt holds the classifier; evaluator.json says whether it was trained (and why
not), its sizes and accuracies.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.config.evaluate import EvaluateParams
from genbench.core import checkpoint
from genbench.core.device import resolve_device
from genbench.core.errors import GenbenchError
from genbench.core.files import atomic_dir, json_text, sha256_file
from genbench.core.layout import EVALUATOR_INFO, EVALUATOR_WEIGHTS
from genbench.core.store import load_split, read_meta
from genbench.metrics.evaluator import accuracy, fit_evaluator


@dataclass(frozen=True)
class StoredEvaluator:
    """A trained evaluator as read back: its info, weights and their sha256."""

    info: dict[str, Any]
    state: dict
    sha256: str


def fit_and_write_evaluator(
    out: Path, data_dir: str | Path, cfg: EvaluateParams, seed: int
) -> dict:
    """Fit the classifier on the train labels and write `out` at once; returns evaluator.json.

    Unlabelled data gets a folder that says why there is no evaluator; that is an error only
    when the evaluator is one of the feature spaces (evaluate.spaces).
    """
    meta = read_meta(data_dir)
    info = {"trained": False, "image_size": meta["image_size"], "channels": meta["channels"]}
    with atomic_dir(out) as tmp:
        if not meta["labelled"]:
            info["reason"] = (
                f"data.source {meta['source']!r} has no labels (no class subfolders): "
                "the evaluator cannot be trained; set evaluate.feature_extractor: "
                "inception-v3-compat and leave 'evaluator' out of evaluate.feature_spaces"
            )
            if "evaluator" in cfg.spaces:
                raise GenbenchError(info["reason"])
        else:
            images, labels = load_split(data_dir, "train")
            test_images, test_labels = load_split(data_dir, "test")
            classes = len(meta["classes"])
            device = resolve_device(cfg.device, key="evaluate.device")
            net = fit_evaluator(images, labels, classes, cfg.evaluator, seed, device)
            checkpoint.save(net.cpu().state_dict(), tmp / EVALUATOR_WEIGHTS)
            info.update(
                trained=True,
                num_classes=classes,
                feature_dim=cfg.evaluator.feature_dim,
                train_accuracy=accuracy(net, images, labels),
                test_accuracy=accuracy(net, test_images, test_labels),
                weights_sha256=sha256_file(tmp / EVALUATOR_WEIGHTS),
            )
            problem = accuracy_problem(info, cfg.evaluator.min_accuracy)
            if problem:
                raise GenbenchError(problem)  # before the folder is written
        (tmp / EVALUATOR_INFO).write_text(json_text(info))
    return info


def accuracy_problem(info: dict[str, Any], min_accuracy: float) -> str | None:
    """Why an evaluator's features cannot be trusted: its test accuracy is below the threshold."""
    found = info.get("test_accuracy")
    if found is None or found >= min_accuracy:
        return None
    return (
        f"evaluator test accuracy {found:.3f} is below evaluate.evaluator.min_accuracy = "
        f"{min_accuracy}: its features would give meaningless FIDs; fix evaluate.evaluator "
        "(lr, steps), or lower min_accuracy for harder data"
    )


def read_evaluator(folder: Path, min_accuracy: float = 0.0) -> StoredEvaluator:
    """The trained evaluator in `folder`, or one line saying why there is none or why its
    accuracy (below `min_accuracy`) makes it untrustworthy."""
    info_path = folder / EVALUATOR_INFO
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if not info.get("trained"):
        missing = f"{folder} holds no trained evaluator; run `dvc repro train_evaluator`"
        raise GenbenchError(info.get("reason", missing))
    problem = accuracy_problem(info, min_accuracy)
    if problem:
        raise GenbenchError(f"{folder}: {problem}")
    return StoredEvaluator(
        info, checkpoint.load(folder / EVALUATOR_WEIGHTS), sha256_file(folder / EVALUATOR_WEIGHTS)
    )
