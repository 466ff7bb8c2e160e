"""The feature extractor behind every FID of an evaluation: the offline evaluator (registered with
torch-fidelity) or Inception v3, whose weights must be at hand before any work starts.
"""

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_fidelity.utils import create_feature_extractor

from genbench.checkpoint import CheckpointError, load
from genbench.config.evaluate import EvaluateParams
from genbench.errors import GenbenchError
from genbench.evaluator_dir import read_evaluator
from genbench.files import sha256_file
from genbench.layout import INCEPTION_FILE
from genbench.metrics.evaluator import register_evaluator


@dataclass(frozen=True)
class Extractor:
    """The feature extractor every FID of one evaluation comes from."""

    label: str  # "evaluator" or "inception-v3-compat": the metrics' group name
    fidelity_name: str  # the name torch-fidelity knows it by
    weights_sha256: str
    weights_path: str | None
    resize: str


INCEPTION_KEY = "Conv2d_1a_3x3.conv.weight"  # one key of torch-fidelity's Inception weights


def weights_file_problem(key: str, path: Path) -> str | None:
    """A local Inception weights file that is missing, not a weights-only torch file (a pickle
    that would run code when torch-fidelity unpickles it), or not torch-fidelity's."""
    if not path.is_file():
        return f"{key} = {str(path)!r}: no such file; give the path of {INCEPTION_FILE}"
    try:
        state = load(path)
    except CheckpointError as err:
        return f"{key} = {str(path)!r}: not loadable ({str(err)[-120:]})"
    if not isinstance(state, dict) or INCEPTION_KEY not in state:
        return f"{key} = {str(path)!r}: not torch-fidelity's Inception weights ({INCEPTION_FILE})"
    return None


def prepare_extractor(cfg: EvaluateParams, evaluator_dir: Path, cuda: bool) -> Extractor:
    """Register the trained evaluator, or make sure Inception weights are at hand (fail fast)."""
    if cfg.feature_extractor == "evaluator":
        stored = read_evaluator(evaluator_dir, cfg.evaluator.min_accuracy)
        name, info = f"genbench-evaluator-{stored.sha256[:16]}", stored.info
        register_evaluator(
            name,
            stored.state,
            info["channels"],
            info["num_classes"],
            info["image_size"],
            info["feature_dim"],
        )
        return Extractor("evaluator", name, stored.sha256, None, "none: images at data.image_size")
    path = cfg.inception_weights
    # torch-fidelity unpickles the file fully: only a file that loads as weights only goes on
    problem = path and weights_file_problem("evaluate.inception_weights", Path(path))
    if problem:
        raise GenbenchError(problem)
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
