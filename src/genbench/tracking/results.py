"""What later stages add: a run per evaluation, the report into the training runs, and the
compare run, which tags every run it compared with its execution. None reopens a finished run
(see the package docstring)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from genbench.files import flatten, sha256_file
from genbench.layout import run_name
from genbench.system import git_commit
from genbench.tracking.runs import log_dataset
from genbench.tracking.store import (
    EXECUTIONS,
    TrackingError,
    check_reachable,
    execution_label,
    pipeline_id,
    project_experiment,
    run_exists,
    tracking_uri,
)


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


def log_evaluation(record: dict, params_file: str | Path, evaluation: Evaluation) -> str | None:
    """A run of its own, `eval <family>-seed<seed> · <execution>`, for one evaluation of the model
    whose training run `record` names: that run's params (so one row holds what was trained and
    how it scored), `evaluate.*`, the metrics as `eval/<group>.<name>`, the metrics file and
    card, the test split as input; tagged with the training run's id and the sha256 of the
    weights and of the metrics file. Re-evaluating a model adds a run: it never overwrites an
    earlier evaluation, nor reopens the training run. Returns the run's id; None, saying why,
    when the training run is not in the current store.
    """
    if not run_exists(record, "evaluation"):
        return None
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
        "genbench.weights_sha256": sha256_file(evaluation.weights),
        "genbench.metrics_sha256": sha256_file(evaluation.metrics_file),
        # the evaluation protocol's digest: runs with equal ids are comparable
        "genbench.protocol_id": str(evaluation.metrics.get("protocol", {}).get("id", "")),
    }
    name = f"eval {family}-seed{seed} · {execution_label(pid)}"
    experiment = training.info.experiment_id
    with mlflow.start_run(
        experiment_id=experiment, run_name=name, tags=tags, log_system_metrics=True
    ) as run:
        mlflow.log_params({**training.data.params, **flatten(evaluation.params, "evaluate")})
        final = {k: v for k, v in evaluation.metrics.items() if k not in ("curve", "protocol")}
        mlflow.log_metrics({f"eval/{k}": v for k, v in flatten(final).items()})
        # the curve: one point per snapshot, the training FLOPs as the step, so MLflow's chart
        # view draws quality against compute
        for point in evaluation.metrics.get("curve", {}).get("points", []):
            found = {f"eval/curve.{k}": point[k] for k in ("fid", "kid_mean", "kid_std")}
            mlflow.log_metrics(found, step=int(point["flops"]))
        log_dataset(evaluation.data, evaluation.meta, "test", "evaluation")
        for path in (evaluation.metrics_file, evaluation.card):
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    return run.info.run_id


def log_report(records: list[dict], folder: Path, artifact_path: str) -> int:
    """The report folder into every model's training run (under `artifact_path`), so each run
    shows the comparisons it took part in. Returns how many runs received it; when the store
    cannot be reached or written it says so in one line and returns 0 (the report stands).
    """
    try:
        return _log_report(records, folder, artifact_path)
    except (TrackingError, MlflowException, OSError) as err:
        print(f"mlflow: report not logged ({str(err).splitlines()[0][:200]})")
        return 0


def _log_report(records: list[dict], folder: Path, artifact_path: str) -> int:
    logged = 0
    for record in records:
        if run_exists(record, "report"):  # the client: the run's end time stays the training's
            MlflowClient().log_artifacts(record["run_id"], str(folder), artifact_path)
            logged += 1
    return logged


def log_comparison(
    params_file: str | Path,
    values: dict[str, float],
    seeds: list,
    file: Path,
    metrics_files: dict[str, Path],
) -> bool:
    """The compare stage's aggregates (`<family>.<group>.<metric>.mean|ci_low|ci_high`) and
    compare.json as a run of their own, `compare · <execution>`, tagged with the pipeline id;
    the runs behind `metrics_files` ({model: metrics JSON}) get the execution's id in their
    `genbench.executions`, and runs.json lists their ids. False, saying why in one line, when
    the store cannot take it."""
    try:
        uri = tracking_uri()
        check_reachable(uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(project_experiment())
        pid = pipeline_id(params_file)
        tags = {
            "genbench.dvc_stage": "compare",
            "genbench.git_commit": git_commit(),
            "genbench.pipeline_id": pid,
            EXECUTIONS: pid,
        }
        with mlflow.start_run(run_name=f"compare · {execution_label(pid)}", tags=tags) as run:
            mlflow.log_params({"seeds": ",".join(map(str, seeds)), "n_seeds": len(seeds)})
            mlflow.log_metrics(values)
            mlflow.log_artifact(str(file))
            used = tag_execution(pid, run.info.experiment_id, metrics_files)
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
