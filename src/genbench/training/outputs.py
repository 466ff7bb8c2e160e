"""A trained model's folder (models/<name>/) and the sampling API every consumer uses.

Folder: weights.pt (final EMA weights of the generating network), config.json (family, params,
data shape, seed), samples.png (fixed noise), train_stats.json, losses.csv, mlflow_run.json.
"""

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genbench import checkpoint
from genbench.data.store import atomic_dir
from genbench.errors import GenbenchError
from genbench.imaging import save_grid
from genbench.layout import CONFIG, CURVES, GRID, RUN, STATS, WEIGHTS
from genbench.training.families import load_family

GRID_SIZE = 64


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> [0, 255] uint8, on the CPU."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def write_model_dir(
    out: Path, net: nn.Module, config: dict[str, Any], stats: dict, curves: Path, run: dict
) -> None:
    """Write every file of a trained model's folder at once (temp folder + rename)."""
    family = load_family(config["family"])
    params = family.PARAMS.model_validate(config["params"])
    grid = sample_images(family, net, params, GRID_SIZE, seed=config["seed"])
    with atomic_dir(out) as tmp:
        checkpoint.save(net.state_dict(), tmp / WEIGHTS)
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (tmp / STATS).write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
        (tmp / RUN).write_text(json.dumps(run, indent=2, sort_keys=True) + "\n")
        shutil.copyfile(curves, tmp / CURVES)
        save_grid(grid, tmp / GRID)


def load_model(
    model_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[Any, nn.Module, Any, dict]:
    """(family module, network in eval mode, its typed params, config) of a trained model folder."""
    model_dir = Path(model_dir)
    try:
        config = json.loads((model_dir / CONFIG).read_text())
    except FileNotFoundError:
        raise GenbenchError(
            f"{model_dir} is not a trained model folder (no {CONFIG}); run `dvc repro` to train it"
        ) from None
    family = load_family(config["family"])
    params = family.PARAMS.model_validate(config["params"])
    net = family.build_generating(params, config["data"]["channels"], config["data"]["image_size"])
    net.load_state_dict(checkpoint.load(model_dir / WEIGHTS))
    return family, net.to(device).eval(), params, config


@torch.no_grad()
def sample_images(
    family: Any, net: nn.Module, params: Any, n: int, seed: int, batch_size: int = 256
) -> torch.Tensor:
    """n uint8 images (n, C, H, W) from `net`, reproducible from `seed`, drawn in batches.

    The one sampling API: the sample grids, `genbench sample` and evaluation all call it. `params`
    is the family's section (for the DDPM it carries the sampler, its steps and eta).
    """
    generator = torch.Generator().manual_seed(seed)
    was_training = net.training
    net.eval()
    chunks = [
        to_uint8(family.sample(net, params, min(batch_size, n - i), generator))
        for i in range(0, n, batch_size)
    ]
    net.train(was_training)
    return torch.cat(chunks)
