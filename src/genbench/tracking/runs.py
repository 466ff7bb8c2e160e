"""The run of the process that trains: started (or reopened after a resumed training), given
the loop's metrics, the prepared data as input, the final network as an MLflow model and the
model folder's files, and closed FINISHED or FAILED."""

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
from mlflow.tracking import MlflowClient
from mlflow.types import Schema, TensorSpec

from genbench.core.files import flatten
from genbench.core.layout import run_name
from genbench.core.system import git_commit
from genbench.tracking.store import (
    EXECUTIONS,
    check_reachable,
    execution_label,
    foreign_artifacts,
    model_name,
    pipeline_id,
    project_experiment,
    run_tags,
    system_metrics_interval,
    tracking_uri,
)

if TYPE_CHECKING:  # torch loads only where a model is logged, not in compare or report
    from torch import nn


def start_run(
    name: str,
    params: dict[str, Any],
    tags: dict[str, str],
    resume_id: str | None,
    system_metrics: bool = False,
) -> str:
    """Start (or, after a resumed training, reopen) the model's run; returns its id.

    With system_metrics, MLflow samples CPU, memory, disk, network (and GPU, when pynvml is
    installed) every SYSTEM_METRICS_INTERVAL seconds as `system/*`.
    """
    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_system_metrics_sampling_interval(system_metrics_interval())
    if resume_id:
        try:
            info = MlflowClient().get_run(resume_id).info
            if info.status != "FINISHED" and not foreign_artifacts(info.artifact_uri):
                run = mlflow.start_run(run_id=resume_id, log_system_metrics=system_metrics)
                return run.info.run_id
        except MlflowException:
            pass  # the run was deleted, or lives in another store: start a new one
    mlflow.set_experiment(project_experiment())
    run = mlflow.start_run(run_name=name, tags=tags, log_system_metrics=system_metrics)
    mlflow.log_params(flatten(params))
    return run.info.run_id


def start_training_run(
    model: str, params_file: str | Path, config: dict, run_hash: str, workdir: Path
) -> str:
    """Start `model`'s run with its tags, or reopen the one a resumed training began.

    Logged params: the model's section under its own names (`steps`, `lr`, `z_dim`, ...: the
    families share the engine's, so MLflow's compare view lines them up), `data.*`, `seed` and
    `budget.*` (the unit and amount, and the steps, images and FLOPs the equal budget gave it),
    from the config that is also written to the model folder. Runs are named
    `<family>-seed<seed> · <execution>` and tagged `genbench.family` and `genbench.seed`: group
    or filter on the family to see its seeds together.

    The run id is kept in workdir (beside the checkpoints) so a killed and resumed training logs
    into one run.
    """
    id_file = workdir / "mlflow_run_id"
    resume_id = id_file.read_text().strip() if id_file.exists() else None
    seed, pid = config["seed"], pipeline_id(params_file)
    tags = {
        "genbench.family": model,
        "genbench.seed": str(seed),
        "genbench.git_commit": git_commit(),
        "genbench.dvc_stage": f"train@{run_name(model, seed)}",
        "genbench.params_hash": run_hash,
        "genbench.pipeline_id": pid,
        EXECUTIONS: pid,
        **run_tags(),
    }
    budget = dict(config.get("budget", {}))
    run_params = {
        **config["params"],
        "data": config["data"],
        "seed": seed,
        "budget": {**budget.pop("budget", {}), **budget},  # budget.unit, not budget.budget.unit
    }
    name = f"{model_name(model, seed)} · {execution_label(pid)}"
    run_id = start_run(name, run_params, tags, resume_id, system_metrics=True)
    workdir.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id)
    return run_id


@contextlib.contextmanager
def training_run(
    model: str,
    params_file: str | Path,
    config: dict,
    run_hash: str,
    workdir: Path,
    enabled: bool = True,
) -> Iterator[Callable[[dict[str, float], int], None] | None]:
    """The model's run around a training: started (or reopened after a resume) on entry, ended
    FINISHED when the block completes and FAILED when it raises. Yields the loop's log_metrics
    callable; with enabled False (DDP ranks > 0) it does nothing and yields None.
    """
    if not enabled:
        yield None
        return
    ok = False
    try:
        start_training_run(model, params_file, config, run_hash, workdir)
        yield log_metrics
        ok = True
    finally:
        end_run(ok)


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
    mlflow.log_input(dataset, context=context, tags={"sha256": sha, "images": count})


def log_model(net: "nn.Module", name: str) -> str:
    """The final generating network as the active run's MLflow PyTorch model named `name`
    (`gan-seed0`; a CPU copy), so it shows in the Models tab and can be registered; returns its
    model id, which evaluation gives its metrics so they show on the model.

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


def log_artifacts(folder: str | Path) -> None:
    """Every file of a folder into the active run's artifacts."""
    mlflow.log_artifacts(str(folder))


def end_run(ok: bool) -> None:
    """Close the active run as FINISHED or FAILED."""
    if mlflow.active_run() is not None:
        mlflow.end_run("FINISHED" if ok else "FAILED")


def run_record(model_id: str | None = None) -> dict[str, str]:
    """What later stages need to link to the active run: its id, experiment and store, and the
    id of the model it logged."""
    run = mlflow.active_run()
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "tracking_uri": mlflow.get_tracking_uri(),
        "model_id": model_id,
    }
