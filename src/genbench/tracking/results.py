"""What later stages add: a run per evaluation (nested under its training run), a report run,
and the compare run, which tags every run it compared with its execution. None reopens a
finished run (see the package docstring)."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from genbench.core.files import flatten, sha256_file
from genbench.core.layout import run_name
from genbench.core.system import git_commit, store_problem
from genbench.tracking.runs import log_dataset
from genbench.tracking.store import (
    EXECUTIONS,
    EXPERIMENT,
    TrackingError,
    check_reachable,
    execution_label,
    model_name,
    pipeline_id,
    project_experiment,
    run_exists,
    run_tags,
    system_metrics_interval,
    tracking_uri,
)

REPORT_ARTIFACTS = "report"  # the report run's artifact folder


@dataclass(frozen=True)
class Evaluation:
    """One model's evaluation, as its run records it."""

    params: dict[str, Any]  # the evaluate section
    metrics: dict[str, Any]  # the metrics JSON's content (nested, numeric leaves)
    metrics_file: Path  # that JSON: its sha256 tags the run, so the compare stage finds it
    card: Path  # the protocol card
    weights: Path  # the evaluated weights file: its sha256 tags the run
    data: Path  # the prepared data folder: its test split is the run's input
    meta: dict[str, Any]  # that folder's meta.json


@contextlib.contextmanager
def evaluation_run(record: dict | None, params_file: str | Path) -> Iterator[bool]:
    """A run of its own, `eval <family>-seed<seed> · <execution>`, open while one evaluation of
    the model whose training run `record` names works (so its duration and system metrics are
    the evaluation's), nested under that training run in MLflow's list (the `mlflow.parentRunId`
    tag: the training run itself is not touched) and tagged with its id. Yields True when it
    logs; False, saying why, when there is no record (the real floor) or the training run is not
    in the current store. Ends FAILED when the block raises. Re-evaluating a model adds a run:
    it never overwrites an earlier evaluation.
    """
    if record is None or not run_exists(record, "evaluation"):
        yield False
        return
    training = MlflowClient().get_run(record["run_id"])
    family = training.data.tags.get("genbench.family", "model")
    seed, pid = training.data.tags.get("genbench.seed", "?"), pipeline_id(params_file)
    tags = {
        "genbench.family": family,
        "genbench.seed": seed,
        "genbench.git_commit": git_commit(),
        "genbench.dvc_stage": f"evaluate@{run_name(family, seed)}",
        "genbench.pipeline_id": pid,
        EXECUTIONS: pid,
        "genbench.training_run_id": training.info.run_id,
        "mlflow.parentRunId": training.info.run_id,
        **run_tags(),
    }
    name = f"eval {model_name(family, seed)} · {execution_label(pid)}"
    mlflow.set_system_metrics_sampling_interval(system_metrics_interval())
    with mlflow.start_run(
        experiment_id=training.info.experiment_id,
        run_name=name,
        tags=tags,
        log_system_metrics=True,
    ):
        mlflow.log_params(training.data.params)  # one row: what was trained and how it scored
        yield True


def log_evaluation(record: dict, evaluation: Evaluation) -> None:
    """Into the active evaluation run: `evaluate.*`, the metrics as `eval/<group>.<name>` (also
    on the training run's logged model, so the Models tab shows its FID), the curve, the
    metrics file and card, the test split as input; tags: the sha256 of the weights and of the
    metrics file (the compare stage finds the run by it) and the protocol id."""
    mlflow.log_params(flatten(evaluation.params, "evaluate"))
    final = {k: v for k, v in evaluation.metrics.items() if k not in ("curve", "protocol")}
    values = {f"eval/{k}": v for k, v in flatten(final).items()}
    mlflow.log_metrics(values, model_id=record.get("model_id"))
    # the curve: one point per snapshot, the training FLOPs as the step, so MLflow's chart view
    # draws quality against compute
    for point in evaluation.metrics.get("curve", {}).get("points", []):
        found = {f"eval/curve.{k}": point[k] for k in ("fid", "kid_mean", "kid_std")}
        mlflow.log_metrics(found, step=int(point["flops"]))
    log_dataset(evaluation.data, evaluation.meta, "test", "evaluation")
    for path in (evaluation.metrics_file, evaluation.card):
        mlflow.log_artifact(str(path), artifact_path="evaluation")
    mlflow.set_tags(
        {
            "genbench.weights_sha256": sha256_file(evaluation.weights),
            "genbench.metrics_sha256": sha256_file(evaluation.metrics_file),
            # the evaluation protocol's digest: runs with equal ids are comparable
            "genbench.protocol_id": str(evaluation.metrics.get("protocol", {}).get("id", "")),
        }
    )


def log_snapshot_grid(image: Any, step: int) -> None:
    """A grid of a snapshot's samples into the active evaluation run as the image `samples` at
    `step` (the snapshot's training step): MLflow's image view steps through training."""
    mlflow.log_image(image, key="samples", step=step)


@contextlib.contextmanager
def execution_run(params_file: str | Path, stage: str) -> Iterator[tuple[str, str]]:
    """A run of an execution's own, `<stage> · <execution>` (compare, report), in the project's
    experiment, tagged with the stage and the pipeline id; yields (its id, the store's URI)."""
    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(project_experiment())
    pid = pipeline_id(params_file)
    tags = {
        "genbench.dvc_stage": stage,
        "genbench.git_commit": git_commit(),
        "genbench.pipeline_id": pid,
        EXECUTIONS: pid,
        **run_tags(),
    }
    with mlflow.start_run(run_name=f"{stage} · {execution_label(pid)}", tags=tags) as run:
        yield run.info.run_id, uri


def log_report(params_file: str | Path, folder: Path) -> dict | None:
    """The report folder as a run of its own, `report · <execution>` (artifacts under
    `report/`); returns its record (run_record's keys), or None, saying why in one line, when
    the store cannot take it (the report stands either way). No other run is touched."""
    try:
        with execution_run(params_file, "report") as (run_id, uri):
            mlflow.log_artifacts(str(folder), artifact_path=REPORT_ARTIFACTS)
            experiment = mlflow.active_run().info.experiment_id
        return {"run_id": run_id, "experiment_id": experiment, "tracking_uri": uri}
    except (TrackingError, MlflowException, OSError) as err:
        print(f"mlflow: report not logged ({str(err).splitlines()[0][:200]})")
        return None


def find_report_run(pid: str, uri: str | None = None) -> dict | None:
    """The newest report run of execution `pid` in the store `uri` (default: the current one),
    as its record; None when there is none or the store cannot be read."""
    uri = uri or tracking_uri()
    missing = uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()
    if missing or store_problem(uri) is not None:  # reading must not create a store
        return None
    mlflow.set_tracking_uri(uri)
    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is None:
        return None
    query = f"tags.`genbench.pipeline_id` = '{pid}' and tags.`genbench.dvc_stage` = 'report'"
    runs = MlflowClient().search_runs(
        [found.experiment_id], query, max_results=1, order_by=["attributes.start_time DESC"]
    )
    if not runs:
        return None
    run = runs[0].info
    return {"run_id": run.run_id, "experiment_id": run.experiment_id, "tracking_uri": uri}


def ui_links(record: dict) -> dict[str, str]:
    """Where MLflow's UI shows a run: its experiment, the run, and its report artifacts; {} for
    a store without a UI address (a sqlite file: `mlflow ui` serves it)."""
    uri = record.get("tracking_uri", "")
    if not uri.startswith(("http://", "https://")):
        return {}
    experiment = f"{uri.rstrip('/')}/#/experiments/{record['experiment_id']}"
    run = f"{experiment}/runs/{record['run_id']}"
    return {"experiment": experiment, "run": run, "report": f"{run}/artifacts/{REPORT_ARTIFACTS}"}


def log_comparison(
    params_file: str | Path,
    values: dict[str, float],
    seeds: list,
    file: Path,
    metrics_files: dict[str, Path],
    table: str = "",
) -> bool:
    """The compare stage's few headline numbers (`values`), compare.json and `table` (Markdown,
    as families.md) as a run of their own, `compare · <execution>`, tagged with the pipeline
    id; the runs behind `metrics_files` ({model: metrics JSON}) get the execution's id in their
    `genbench.executions`, and runs.json lists their ids. False, saying why in one line, when
    the store cannot take it."""
    try:
        with execution_run(params_file, "compare"):
            experiment = mlflow.active_run().info.experiment_id
            mlflow.log_params({"seeds": ",".join(map(str, seeds)), "n_seeds": len(seeds)})
            mlflow.log_metrics(values)
            mlflow.log_artifact(str(file))
            if table:
                mlflow.log_text(table, "families.md")
            used = tag_execution(pipeline_id(params_file), experiment, metrics_files)
            mlflow.log_dict(used, "runs.json")
        return True
    except (TrackingError, MlflowException, OSError) as err:
        print(f"mlflow: comparison not logged ({str(err).splitlines()[0][:200]})")
        return False


def tag_execution(pid: str, experiment_id: str, metrics_files: dict[str, Path]) -> dict:
    """Add `pid` to `genbench.executions` of the evaluation run that wrote each metrics file
    (found by its sha256) and of that run's training run; returns {model: {"training": id,
    "evaluation": id}}. Says in one line which models have no such run in this store (evaluated
    with another store, or restored by DVC without running)."""
    client, used, missing = MlflowClient(), {}, []
    for model, path in metrics_files.items():
        query = f"tags.`genbench.metrics_sha256` = '{sha256_file(path)}'"
        found = client.search_runs(
            [experiment_id], query, max_results=1, order_by=["attributes.start_time DESC"]
        )
        if not found:
            missing.append(model)
            continue
        ids = {
            "training": found[0].data.tags.get("genbench.training_run_id", ""),
            "evaluation": found[0].info.run_id,
        }
        for run_id in filter(None, ids.values()):
            _add_execution(client, run_id, pid)
        used[model] = ids
    if missing:
        print(
            f"mlflow: no evaluation run in {tracking_uri()} wrote the metrics of "
            f"{', '.join(missing)}; their runs are not tagged with execution {pid}"
        )
    return used


def _add_execution(client: MlflowClient, run_id: str, pid: str) -> None:
    """pid appended to the run's `genbench.executions` (set_tag: status and end time stay)."""
    try:
        listed = client.get_run(run_id).data.tags.get(EXECUTIONS, "")
    except MlflowException:
        return  # the training run was deleted: its evaluation still carries the id
    ids = [i for i in listed.split(",") if i]
    if pid not in ids:
        client.set_tag(run_id, EXECUTIONS, ",".join([*ids, pid]))
