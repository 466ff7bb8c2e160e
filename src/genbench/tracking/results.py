"""The runs of the stages after training, each its own: an evaluation's (nested under the
training run that logged the same weights), the compare run and the report run. They find other
runs by content (the sha256 tags) and read them; they never write to them."""

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from genbench.core.files import flatten, sha256_file
from genbench.core.layout import CONFIG, WEIGHTS, run_name
from genbench.core.system import store_problem
from genbench.tracking.runs import log_dataset
from genbench.tracking.store import (
    EXPERIMENT,
    WEIGHTS_SHA256,
    TrackingError,
    model_name,
    newest_run,
    record_of,
    start_run,
    tracking_uri,
)

REPORT_ARTIFACTS = "report"  # the report run's artifact folder
METRICS_SHA256 = "genbench.metrics_sha256"  # an evaluation run's metrics file (compare reads it)
COMPARE_SHA256 = "genbench.compare_sha256"  # compare.json, on the compare and report runs
TRAINING_RUN = "genbench.training_run_id"  # on an evaluation run: the training run it found


@dataclass(frozen=True)
class Evaluation:
    """One model's evaluation, as its run records it."""

    params: dict[str, Any]  # the evaluate section
    metrics: dict[str, Any]  # the metrics JSON's content (nested, numeric leaves)
    metrics_file: Path  # that JSON: its sha256 tags the run, so the compare stage finds it
    card: Path  # the protocol card
    data: Path  # the prepared data folder: its test split is the run's input
    meta: dict[str, Any]  # that folder's meta.json


@contextlib.contextmanager
def evaluation_run(model: Path | None, params_file: str | Path) -> Iterator[dict | None]:
    """A run of its own, `eval <family>-seed<seed> · <execution>`, open while the evaluation of
    the model folder `model` works (its duration and system metrics are the evaluation's),
    tagged with the sha256 of the weights it scores. Yields the training run that logged the
    same weights ({"run_id", "model_id"}, read from the store; the evaluation run is nested
    under it by its own `mlflow.parentRunId` tag), both None when the store has none (the run
    is then not nested, said in one line); yields None and logs nothing for the real-data floor.
    Ends FAILED when the block raises. Re-evaluating a model adds a run.
    """
    if model is None:
        yield None
        return
    config = json.loads((model / CONFIG).read_text())
    family, seed = config["family"], str(config["seed"])
    weights = sha256_file(model / WEIGHTS)
    tags = {"genbench.family": family, "genbench.seed": seed, WEIGHTS_SHA256: weights}
    stage, name = f"evaluate@{run_name(family, seed)}", f"eval {model_name(family, seed)}"
    with start_run(params_file, stage, name, tags, system_metrics=True) as run:
        training = trained(MlflowClient(tracking_uri()), run.info.experiment_id, weights)
        found = {"run_id": None, "model_id": None}
        if training is None:
            print(
                f"mlflow: no training run in {tracking_uri()} logged weights {weights[:12]} "
                "(trained against another store); the evaluation run is not nested under one"
            )
        else:
            found = {"run_id": training.info.run_id, "model_id": model_id(training)}
            mlflow.set_tags({"mlflow.parentRunId": found["run_id"], TRAINING_RUN: found["run_id"]})
        yield found


def trained(client: MlflowClient, experiment_id: str, weights: str) -> Run | None:
    """The newest training run that logged the weights with sha256 `weights`, or None."""
    query = f"tags.`{WEIGHTS_SHA256}` = '{weights}' and tags.`genbench.dvc_stage` LIKE 'train@%'"
    return newest_run(client, experiment_id, query)


def model_id(run: Run | None) -> str | None:
    """The id of the model a training run logged (None without one)."""
    outputs = run.outputs.model_outputs if run is not None and run.outputs else []
    return outputs[0].model_id if outputs else None


def log_evaluation(record: dict, evaluation: Evaluation) -> None:
    """Into the active evaluation run: `evaluate.*`, the metrics as `eval/<group>.<name>` (also
    on the training run's logged model, `record["model_id"]`, so the Models tab shows its FID),
    the curve, the metrics file and card, the test split as input; tags: the sha256 of the
    metrics file (the compare stage finds the run by it) and the protocol id."""
    mlflow.log_params(flatten(evaluation.params, "evaluate"))
    final = {k: v for k, v in evaluation.metrics.items() if k not in ("curve", "protocol")}
    # numbers only: the metrics file's `extractor` (the primary space's name) is a param
    values = {
        f"eval/{k}": v
        for k, v in flatten(final).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    mlflow.log_param("extractor", evaluation.metrics.get("extractor", ""))
    mlflow.log_metrics(values, model_id=record["model_id"])
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
            METRICS_SHA256: sha256_file(evaluation.metrics_file),
            # the evaluation protocol's digest: runs with equal ids are comparable
            "genbench.protocol_id": str(evaluation.metrics.get("protocol", {}).get("id", "")),
        }
    )


def log_snapshot_grid(image: Any, step: int) -> None:
    """A grid of a snapshot's samples into the active evaluation run as the image `samples` at
    `step` (the snapshot's training step): MLflow's image view steps through training."""
    mlflow.log_image(image, key="samples", step=step)


def log_report(params_file: str | Path, folder: Path, compare: Path | None = None) -> dict | None:
    """The report folder as a run of its own, `report · <execution>` (artifacts under
    `report/`), tagged with the sha256 of the `compare` file it renders (the compare run that
    wrote it carries the same tag); returns its record (run id, experiment, store), or None,
    saying why in one line, when the store cannot take it (the report stands either way)."""
    try:
        tags = {COMPARE_SHA256: sha256_file(compare)} if compare else {}
        with start_run(params_file, "report", "report", tags) as run:
            mlflow.log_artifacts(str(folder), artifact_path=REPORT_ARTIFACTS)
        return record_of(run, tracking_uri())
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
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    query = f"tags.`genbench.pipeline_id` = '{pid}' and tags.`genbench.dvc_stage` = 'report'"
    run = found and newest_run(client, found.experiment_id, query)
    return record_of(run, uri) if run else None


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
    """The compare stage's few headline numbers (`values`), compare.json (`file`, its sha256 a
    tag) and `table` (Markdown, as families.md) as a run of its own, `compare · <execution>`,
    with runs.json: what it compared (used_runs). False, saying why in one line, when the store
    cannot take it."""
    try:
        tags = {COMPARE_SHA256: sha256_file(file)}
        with start_run(params_file, "compare", "compare", tags) as run:
            mlflow.log_params({"seeds": ",".join(map(str, seeds)), "n_seeds": len(seeds)})
            mlflow.log_metrics(values)
            mlflow.log_artifact(str(file))
            if table:
                mlflow.log_text(table, "families.md")
            mlflow.log_dict(used_runs(run.info.experiment_id, metrics_files), "runs.json")
        return True
    except (TrackingError, MlflowException, OSError) as err:
        print(f"mlflow: comparison not logged ({str(err).splitlines()[0][:200]})")
        return False


def log_ablation(
    params_file: str | Path, table: str, found: dict[str, Any], means: dict[str, float]
) -> bool:
    """An ablation (pipelines/ablation.py) as a run of its own, `ablation · <execution>`: its
    table (ablation.md), every verdict with the DVC experiment and training runs of each option
    (ablation.json), and `means` as metrics (`vae.gmm_density.val_fid`, `vae.baseline.val_fid`).
    False, saying why in one line, when the store cannot take it."""
    try:
        with start_run(params_file, "ablation", "ablation", {}):
            mlflow.log_text(table, "ablation.md")
            mlflow.log_dict(found, "ablation.json")
            mlflow.log_metrics(means)
            mlflow.log_params({f"experiment.{k}": v for k, v in found["experiments"].items()})
        return True
    except (TrackingError, MlflowException, OSError) as err:
        print(f"mlflow: ablation not logged ({str(err).splitlines()[0][:200]})")
        return False


def used_runs(experiment_id: str, metrics_files: dict[str, Path]) -> dict[str, Any]:
    """Every model behind `metrics_files` ({model: metrics JSON}) as found in the store by
    content: its family and seed, the sha256 of its metrics file, the evaluation run that wrote
    that file, the weights it scored and the training run that logged them (with its model),
    each run with the execution that made it (an earlier one when DVC reused it); and `filter`,
    a search that lists all these runs in MLflow's UI. Says in one line which models have no
    evaluation run in the store (evaluated against another store)."""
    client, models, missing = MlflowClient(tracking_uri()), {}, []
    for model, path in metrics_files.items():
        metrics = sha256_file(path)
        evaluation = newest_run(client, experiment_id, f"tags.`{METRICS_SHA256}` = '{metrics}'")
        tags = evaluation.data.tags if evaluation else {}
        weights = tags.get(WEIGHTS_SHA256)
        training = trained(client, experiment_id, weights) if weights else None
        if evaluation is None:
            missing.append(model)
        models[model] = {
            "family": tags.get("genbench.family"),
            "seed": tags.get("genbench.seed"),
            "metrics_sha256": metrics,
            "weights_sha256": weights,
            "evaluation": _made(evaluation),
            "training": _made(training, model_id=model_id(training)),
        }
    if missing:
        named = ", ".join(missing)
        print(f"mlflow: no evaluation run in {tracking_uri()} wrote the metrics of {named}")
    found = [m[kind] for m in models.values() for kind in ("evaluation", "training") if m[kind]]
    listed = ", ".join(f"'{run['run_id']}'" for run in found)
    return {"models": models, "filter": f"attributes.run_id IN ({listed})" if found else ""}


def _made(run: Run | None, **more: str | None) -> dict[str, str | None] | None:
    """A run's id and the execution that made it, with `more`; None for no run."""
    if run is None:
        return None
    made = {"run_id": run.info.run_id, "pipeline_id": run.data.tags.get("genbench.pipeline_id")}
    return {**made, **more}
