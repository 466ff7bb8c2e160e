"""The run of the process that trains: started, given the loop's metrics, the prepared data
as input, the final network as an MLflow model and the model folder's files, tagged with the
weights' sha256 (evaluation finds it by them), and closed FINISHED or FAILED."""

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.exceptions import MlflowException
from mlflow.types import Schema, TensorSpec

from genbench.core.files import flatten, sha256_file
from genbench.core.layout import WEIGHTS, run_name
from genbench.tracking.store import WEIGHTS_SHA256, model_name, record_of, start_run

if TYPE_CHECKING:  # torch loads only where a model is logged, not in compare or report
    from torch import nn


@contextlib.contextmanager
def training_run(
    model: str, params_file: str | Path, config: dict, enabled: bool = True
) -> Iterator[Callable[[dict[str, float], int], None] | None]:
    """The model's run around a training, `<family>-seed<seed> · <execution>`: started on
    entry, ended FINISHED when the block completes and FAILED when it raises (a training
    resumed later is a new run). Yields the loop's log_metrics callable; with enabled False
    (DDP ranks > 0) it does nothing and yields None.

    Logged params: the model's section under its own names (`steps`, `lr`, `z_dim`, ...: the
    families share the engine's, so MLflow's compare view lines them up), `data.*`, `seed` and
    `budget.*` (the unit and amount, and the steps, images and FLOPs the equal budget gave it),
    from the config that is also written to the model folder. Tagged `genbench.family` and
    `genbench.seed`: group or filter on the family to see its seeds together.
    """
    if not enabled:
        yield None
        return
    seed = config["seed"]
    tags = {"genbench.family": model, "genbench.seed": str(seed)}
    stage = f"train@{run_name(model, seed)}"
    budget = dict(config.get("budget", {}))
    params = {
        **config["params"],
        "data": config["data"],
        "seed": seed,
        "budget": {**budget.pop("budget", {}), **budget},  # budget.unit, not budget.budget.unit
    }
    with start_run(params_file, stage, model_name(model, seed), tags, system_metrics=True):
        mlflow.log_params(flatten(params))
        yield log_metrics


def log_metrics(values: dict[str, float], step: int) -> None:
    """Per-step training metrics into the active run as `train/<name>` (the engine's
    log_metrics callable): `train/loss`, `train/images_per_second`, ..."""
    mlflow.log_metrics({f"train/{k}": v for k, v in values.items()}, step=step)


def log_dataset(data_dir: str | Path, meta: dict[str, Any], split: str, context: str) -> None:
    """A prepared split as the active run's input (`training`, `evaluation`): named
    `<source>-<size>px/<split>`, its digest the sha256 of the images file in meta.json (cut to
    the 32 characters MLflow's datasets table holds; whole in the input's `sha256` tag)."""
    file = f"{split}_images.npy"
    sha = meta["sha256"][file]
    shape = (-1, *meta["shape"][split][1:])  # (N, C, H, W) uint8
    schema = Schema([TensorSpec(np.dtype(np.uint8), shape, name="images")])
    with warnings.catch_warnings():  # two registered source types take a local path: same one
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(Path(data_dir) / file))
    name = f"{meta['source']}-{meta['image_size']}px/{split}"
    dataset = MetaDataset(source, name=name, digest=sha[:32], schema=schema)
    count = str(meta["counts"][split])
    for attempt in range(3):
        try:
            mlflow.log_input(dataset, context=context, tags={"sha256": sha, "images": count})
            return
        except MlflowException as err:
            # Two stages at once (parallel workers) that log a dataset new to a sqlite store
            # both insert it; the second one's retry finds it there.
            if "UNIQUE constraint failed" not in str(err) or attempt == 2:
                raise


def log_model(net: "nn.Module", name: str) -> str:
    """The final generating network as the active run's MLflow PyTorch model named `name`
    (`gan-seed0`; a CPU copy), so it shows in the Models tab and can be registered; returns its
    model id. Evaluation finds it through the run and logs its metrics with it (they show on
    the model).

    Its pickle names genbench's classes: load it where genbench is installed. Requirements are
    given (torch, and diffusers for the DDPM), not inferred: inference loads the model again in
    a subprocess, seconds for nothing.
    """
    import importlib.metadata

    import mlflow.pytorch

    cpu = copy.deepcopy(net).to("cpu").eval()
    packages = {type(m).__module__.split(".")[0] for m in cpu.modules()} - {"genbench"}
    requirements = [
        f"{name}=={importlib.metadata.version(name).split('+')[0]}" for name in sorted(packages)
    ]
    # pickle, not MLflow 3's default pt2 (torch.export), which needs an input example to trace
    logged = mlflow.pytorch.log_model(
        cpu, name=name, pip_requirements=requirements, serialization_format="pickle"
    )
    return logged.model_id


def log_model_dir(folder: str | Path) -> None:
    """Every file of the model folder into the active run's artifacts, and its weights file's
    sha256 as the run's tag `genbench.weights_sha256`: evaluation finds the run by it."""
    mlflow.log_artifacts(str(folder))
    mlflow.set_tag(WEIGHTS_SHA256, sha256_file(Path(folder) / WEIGHTS))


def run_record(model_id: str | None = None) -> dict[str, str]:
    """What the model folder keeps of the active run (mlflow_run.json): its id, experiment and
    store, and the id of the model it logged."""
    return {**record_of(mlflow.active_run(), mlflow.get_tracking_uri()), "model_id": model_id}
