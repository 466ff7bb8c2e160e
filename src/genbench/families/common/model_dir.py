"""A trained model's folder (models/<name>/) and the sampling API every consumer uses.

Folder: weights.safetensors (final EMA weights of the generating network), config.json (family,
params, data shape, seed, budget, parameter counts), samples.png (fixed noise),
train_stats.json and losses.csv (with timings), mlflow_run.json, snapshots/ (the weights at
fractions of the budget and their index, snapshots.json).
Written by training, read by evaluation, `genbench sample` and `genbench verify`: none of them
imports the other.

config.json also records the sha256 of every weights file (DIGESTS), and every reader checks it
before loading: DVC's status trusts a file's size and mtime, so a file changed in place (a
tensor zeroed, a disk fault) passes it, and sampling would quietly use the damaged weights.
Folders written before the digests (no DIGESTS key) still load: there is nothing to check.
"""

import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn
from tqdm import tqdm

from genbench.config.base import format_validation_error
from genbench.core import checkpoint
from genbench.core.errors import GenbenchError
from genbench.core.files import atomic_dir, sha256_file, write_json
from genbench.core.imaging import save_grid, to_uint8
from genbench.core.layout import CONFIG, CURVES, GRID, RUN, SNAPSHOTS, STATS, WEIGHTS
from genbench.families import NAMES, load_family
from genbench.families.common.base import Family, Progress

GRID_SIZE = 64
DIGESTS = "sha256"  # config.json's key: weights file (path in the folder) -> its hex sha256


@dataclass(frozen=True)
class TrainedModel:
    """A model folder loaded: its family, network (eval mode), typed params and config."""

    family: Family
    net: nn.Module
    params: Any  # the family's params section
    config: dict[str, Any]


def write_model_dir(
    out: Path,
    net: nn.Module,
    config: dict[str, Any],
    stats: dict,
    curves: Path,
    run: dict,
    fill: Callable[[Path], None] | None = None,
) -> None:
    """Write every file of a trained model's folder at once (temp folder + rename); `fill`
    writes more into the temp folder (the snapshots)."""
    family = load_family(config["family"])
    params = family.params.model_validate(config["params"])
    grid = sample_images(family, net, params, GRID_SIZE, seed=config["seed"])
    with atomic_dir(out) as tmp:
        checkpoint.save_weights(net.state_dict(), tmp / WEIGHTS)
        if fill is not None:
            fill(tmp)
        digests = {name: sha256_file(tmp / name) for name in weights_files(tmp)}
        for name, content in ((CONFIG, {**config, DIGESTS: digests}), (STATS, stats), (RUN, run)):
            write_json(tmp / name, content)
        shutil.copyfile(curves, tmp / CURVES)
        save_grid(grid, tmp / GRID)


def load_model(
    model_dir: str | Path, device: str | torch.device = "cpu", *, snapshots: bool = False
) -> TrainedModel:
    """The family, network in eval mode, typed params and config of a trained model folder.

    The weights must still have the sha256 config.json recorded (with `snapshots`, every weights
    file of the folder must: evaluation scores the snapshots too); a damaged config.json, a
    changed file or weights that do not fit the network are one-line GenbenchErrors.
    `config` is config.json without its DIGESTS (the folder's record, not the model's).
    """
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    family, params = _described(model_dir, config)
    check_digests(model_dir, config, None if snapshots else [WEIGHTS])
    state = checkpoint.load_weights(model_dir / WEIGHTS)
    try:
        net = family.build_generating(
            params, config["data"]["channels"], config["data"]["image_size"]
        )
        net.load_state_dict(state)
    except RuntimeError as err:  # load_state_dict's report spans lines: its gist, cut short
        gist = " ".join(str(err).split())[:160]
        raise GenbenchError(
            f"{model_dir / WEIGHTS}: does not fit the {family.name} network {CONFIG} describes "
            f"({gist}); {_fix(model_dir)}"
        ) from None
    described = {key: value for key, value in config.items() if key != DIGESTS}
    return TrainedModel(family, net.to(device).eval(), params, described)


def verify_model_dir(model_dir: str | Path) -> str:
    """`genbench verify`'s line for a sound folder: config.json describes a model and every weights
    file has the sha256 it records (hashed, not loaded). A damaged folder is a one-line
    GenbenchError naming the file."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    _described(model_dir, config)
    checked = check_digests(model_dir, config)
    if checked is not None:
        files = "weights file matches" if checked == 1 else "weights files match"
        return f"{model_dir}: ok ({checked} {files} {CONFIG})"
    if not (model_dir / WEIGHTS).is_file():
        raise GenbenchError(f"{model_dir / WEIGHTS}: missing; {_fix(model_dir)}")
    return (
        f"{model_dir}: ok, unchecked: {CONFIG} records no {DIGESTS} (written before digests; "
        f"`dvc repro -f train@{model_dir.name}` adds them)"
    )


def weights_files(model_dir: Path) -> list[str]:
    """The folder's weights files as DIGESTS names them: the final weights, then the snapshots."""
    snapshots = sorted((model_dir / SNAPSHOTS).glob("*.safetensors"))
    final = [WEIGHTS] if (model_dir / WEIGHTS).exists() else []
    return final + [path.relative_to(model_dir).as_posix() for path in snapshots]


def read_config(model_dir: Path) -> dict[str, Any]:
    """A model folder's config.json; a missing one, or one that is not a JSON object with a
    well-formed DIGESTS mapping (when it has one), is a one-line GenbenchError naming it."""
    path = model_dir / CONFIG
    try:
        config = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise GenbenchError(
            f"{model_dir} is not a trained model folder (no {CONFIG}); run `dvc repro` to train it"
        ) from None
    except (OSError, ValueError) as err:  # unreadable, not UTF-8, not JSON
        raise GenbenchError(f"{path}: not readable JSON ({err}); {_fix(model_dir)}") from None
    if not isinstance(config, dict):
        raise GenbenchError(f"{path}: not a JSON object; {_fix(model_dir)}")
    digests = config.get(DIGESTS)
    if DIGESTS in config and not (
        isinstance(digests, dict)
        and all(_inside(name) and isinstance(value, str) for name, value in digests.items())
    ):
        raise GenbenchError(
            f"{path}: {DIGESTS} must map files of the folder to hex digests; {_fix(model_dir)}"
        )
    return config


def check_digests(
    model_dir: Path, config: dict[str, Any], names: Iterable[str] | None = None
) -> int | None:
    """Check that the weights files `names` (default: those config.json lists and those the
    folder has) have the sha256 config.json recorded; returns how many were checked, or None for
    a folder written before digests. A changed, missing or unlisted file is a one-line
    GenbenchError naming each such file."""
    digests = config.get(DIGESTS)
    if digests is None:
        return None
    names = sorted({*digests, *weights_files(model_dir)}) if names is None else list(names)
    wrong = []
    for name in names:
        path = model_dir / name
        if name not in digests:
            wrong.append(f"{path}: not in {CONFIG}'s {DIGESTS} (added after training)")
        elif not path.is_file():
            wrong.append(f"{path}: missing ({CONFIG} records its sha256)")
        elif _sha256(path) != digests[name]:
            wrong.append(f"{path}: sha256 differs from {CONFIG} (changed after training)")
    if wrong:
        raise GenbenchError(f"{'; '.join(wrong)}; {_fix(model_dir)}")
    return len(names)


def _described(model_dir: Path, config: dict[str, Any]) -> tuple[Family, Any]:
    """The family and typed params config.json describes, its data shape and seed checked: a
    missing key, unknown family or bad value is a one-line GenbenchError naming the file."""

    def refuse(what: str) -> GenbenchError:
        return GenbenchError(f"{model_dir / CONFIG}: {what}; {_fix(model_dir)}")

    for key in ("family", "params", "data", "seed"):
        if key not in config:
            raise refuse(f"no {key!r} key")
    if config["family"] not in NAMES:
        raise refuse(f"family = {config['family']!r}: not one of {', '.join(NAMES)}")
    data = config["data"]
    if not (
        isinstance(data, dict) and all(_count(data.get(k)) for k in ("channels", "image_size"))
    ):
        raise refuse(f"data = {data!r}: needs channels and image_size, positive integers")
    if not isinstance(config["seed"], int) or isinstance(config["seed"], bool):
        raise refuse(f"seed = {config['seed']!r}: not an integer")
    family = load_family(config["family"])
    try:
        params = family.params.model_validate(config["params"])
    except ValidationError as err:
        raise refuse(format_validation_error("params", err, family.params)) from None
    return family, params


def _sha256(path: Path) -> str | None:
    """The file's sha256; None when it cannot be read (it then differs from any record)."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _inside(name: Any) -> bool:
    """A DIGESTS key names a file inside the folder (no absolute path, no `..`)."""
    return isinstance(name, str) and not Path(name).is_absolute() and ".." not in Path(name).parts


def _fix(model_dir: Path) -> str:
    """How a damaged model folder is restored: DVC's cached copy, or training it again."""
    return f"run `dvc checkout {model_dir}` or retrain with `dvc repro -f train@{model_dir.name}`"


@torch.no_grad()
def sample_images(
    family: Family, net: nn.Module, params: Any, n: int, seed: int, batch_size: int = 256
) -> torch.Tensor:
    """n uint8 images (n, C, H, W) from `net`, reproducible from `seed`, drawn in batches.

    The one sampling API: the sample grids, `genbench sample` and evaluation all call it. `params`
    is the family's section (for the DDPM it carries the sampler, its steps and eta).
    """
    generator = torch.Generator().manual_seed(seed)
    was_training = net.training
    net.eval()
    chunks = []
    # a DDPM batch of 256 takes seconds; the bar (stderr, terminals only) gives the ETA. It only
    # counts: the images are the same with it as without it (tests/unit/test_families.py).
    with tqdm(total=n, unit="img", desc="sample", mininterval=1.0, disable=None) as bar:
        for i in range(0, n, batch_size):
            size = min(batch_size, n - i)
            told = None if bar.disable else _advance(bar, i, size)
            chunks.append(to_uint8(family.sample(net, params, size, generator, told)))
            bar.update(i + size - bar.n)
    net.train(was_training)
    return torch.cat(chunks)


def _advance(bar: tqdm, start: int, size: int) -> Progress:
    """The family's progress callback for the batch of `size` images from `start`: a sampler of
    many passes (the DDPM's denoising steps) moves the bar within the batch."""
    return lambda done: bar.update(start + round(done * size) - bar.n)
