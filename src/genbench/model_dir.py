"""A trained model's folder (models/<name>/) and the sampling API every consumer uses.

Folder: weights.safetensors (final EMA weights of the generating network), config.json (family,
params, data shape, seed, budget, parameter counts), samples.png (fixed noise),
train_stats.json and losses.csv (with timings), mlflow_run.json, snapshots/ (the weights at
fractions of the budget and their index, snapshots.json).
Written by training, read by evaluation and `genbench sample`: none of them imports the other.
"""

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from genbench import checkpoint
from genbench.errors import GenbenchError
from genbench.families import load_family
from genbench.families.base import Family, Progress
from genbench.files import atomic_dir, write_json
from genbench.imaging import save_grid, to_uint8
from genbench.layout import CONFIG, CURVES, GRID, RUN, STATS, WEIGHTS

GRID_SIZE = 64


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
        for name, content in ((CONFIG, config), (STATS, stats), (RUN, run)):
            write_json(tmp / name, content)
        shutil.copyfile(curves, tmp / CURVES)
        save_grid(grid, tmp / GRID)
        if fill is not None:
            fill(tmp)


def load_model(model_dir: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """The family, network in eval mode, typed params and config of a trained model folder."""
    model_dir = Path(model_dir)
    try:
        config = json.loads((model_dir / CONFIG).read_text())
    except FileNotFoundError:
        raise GenbenchError(
            f"{model_dir} is not a trained model folder (no {CONFIG}); run `dvc repro` to train it"
        ) from None
    family = load_family(config["family"])
    params = family.params.model_validate(config["params"])
    net = family.build_generating(params, config["data"]["channels"], config["data"]["image_size"])
    net.load_state_dict(checkpoint.load_weights(model_dir / WEIGHTS))
    return TrainedModel(family, net.to(device).eval(), params, config)


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
