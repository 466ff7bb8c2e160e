"""The feature spaces behind every FID of an evaluation: the offline evaluator and the random CNN
(registered with torch-fidelity), or Inception v3, DINOv2 and CLIP, whose weights must be at hand
before any work starts.
"""

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_fidelity.utils import create_feature_extractor

from genbench.config.evaluate import CLIP, DINOV2, EVALUATOR, RANDOM_CNN, EvaluateParams
from genbench.core.checkpoint import CheckpointError, load
from genbench.core.errors import GenbenchError
from genbench.core.files import sha256_file
from genbench.core.layout import INCEPTION_FILE
from genbench.evaluation.evaluator_dir import read_evaluator
from genbench.metrics.evaluator import register_evaluator
from genbench.metrics.spaces import register_random_cnn

AT_DATA_SIZE = "none: images at data.image_size"


@dataclass(frozen=True)
class Extractor:
    """The feature extractor every FID of one evaluation comes from."""

    label: str  # the space's name ("evaluator", "random-cnn", ...): the metrics' group name
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
    """The primary space: register the trained evaluator, or make sure Inception weights are at
    hand (fail fast)."""
    if cfg.feature_extractor == EVALUATOR:
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
        return Extractor(EVALUATOR, name, stored.sha256, None, AT_DATA_SIZE)
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


def prepare_space(
    space: str, cfg: EvaluateParams, evaluator_dir: Path, meta: dict, cuda: bool
) -> Extractor:
    """Any feature space by name (config.evaluate.SPACES); the weights of a pretrained one must
    be at hand or downloadable, else one line says how to provide them."""
    if space == RANDOM_CNN:
        name, sha256 = register_random_cnn(meta["channels"], meta["image_size"])
        return Extractor(RANDOM_CNN, name, sha256, None, AT_DATA_SIZE)
    if space in DINOV2 or space in CLIP:
        return _pretrained(space, cfg.space_weights.get(space), cuda)
    primary = cfg.model_copy(update={"feature_extractor": space})  # evaluator or Inception
    return prepare_extractor(primary, evaluator_dir, cuda)


def _pretrained(space: str, path: str | None, cuda: bool) -> Extractor:
    """A DINOv2 or CLIP space: its weights from `path` (CLIP) or torch hub's cache, downloaded
    into that cache when they are not there yet and the network answers."""
    if path and not Path(path).is_file():
        raise GenbenchError(
            f"evaluate.space_weights.{space} = {path!r}: no such file; give the path of "
            "OpenAI's CLIP .pt file"
        )
    file = pretrained_weights(space, path)
    if file is None:
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # torch.hub's download lines
                create_feature_extractor(space, [space.split("-")[0]], cuda=cuda, verbose=False)
        except Exception:  # network, hub and load errors come in many types
            raise GenbenchError(pretrained_problem(space)) from None
        file = pretrained_weights(space, path)
        if file is None:
            raise GenbenchError(pretrained_problem(space))
    side = "224×224" if space in DINOV2 else "the model's input size"
    resize = (
        f"torch-fidelity: bilinear to {side} (TensorFlow-compatible), gray repeated to RGB, "
        f"{'ImageNet' if space in DINOV2 else 'CLIP'} normalisation"
    )
    return Extractor(space, space, sha256_file(file), path, resize)


def hub_dir() -> Path:
    return Path(torch.hub.get_dir())


# torch hub's names for the files torch-fidelity's pretrained extractors load
DINOV2_REPO = "facebookresearch_dinov2"  # + _main or _master: the cloned hub repository


def dinov2_checkpoint(space: str) -> str:
    """dinov2-vit-s-14 -> dinov2_vits14_pretrain.pth (the file the hub code downloads)."""
    size = space.split("-")[2]
    return f"dinov2_vit{size}14_pretrain.pth"


def pretrained_weights(space: str, path: str | None) -> Path | None:
    """The weights file a DINOv2 or CLIP space will load: `path` (CLIP), else torch hub's cache;
    None when it is not there."""
    if path:
        return Path(path) if Path(path).is_file() else None
    hub = hub_dir()
    if space in DINOV2:
        repos = [hub / f"{DINOV2_REPO}_{ref}" / "hubconf.py" for ref in ("main", "master")]
        checkpoint = hub / "checkpoints" / dinov2_checkpoint(space)
        return checkpoint if checkpoint.is_file() and any(r.is_file() for r in repos) else None
    from torch_fidelity.feature_extractor_clip import MODEL_METADATA  # noqa: PLC0415

    found = hub / "checkpoints" / f"{space}-{MODEL_METADATA[space]['hash']}.pt"
    return found if found.is_file() else None


def pretrained_problem(space: str) -> str:
    """One line: what a DINOv2 or CLIP space misses, and how to provide it."""
    hub = hub_dir()
    if space in DINOV2:
        model = "dinov2_vit" + space.split("-")[2] + "14"
        return (
            f"evaluate.feature_spaces: {space} needs torch hub's cache ({hub}/{DINOV2_REPO}_main "
            f"and checkpoints/{dinov2_checkpoint(space)}): on a machine with internet run "
            f"`python -c \"import torch; torch.hub.load('facebookresearch/dinov2', '{model}')\"` "
            "and copy its TORCH_HOME here, or drop the space"
        )
    return (
        f"evaluate.feature_spaces: {space} weights are not in torch hub's cache ({hub}/"
        f"checkpoints); set evaluate.space_weights.{space} to OpenAI's .pt file, run once with "
        "internet, or drop the space"
    )
