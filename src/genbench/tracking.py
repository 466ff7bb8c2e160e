"""The only module that imports mlflow: one run per trained model (family and seed), one per
evaluation of it, and one `compare` run per pipeline execution.

Grouping: every run carries the tags `genbench.family` and `genbench.seed` (not the compare
run), and the tag `genbench.pipeline_id` of the execution that made it, shared by the stages of
one `make run` / `dvc repro` (GENBENCH_PIPELINE_ID when set, else a hash of the git commit and
params.yaml). A shared tag rather than a parent run, because stages are separate processes that
DVC may rerun alone: a tag needs no stage to create a parent first.

An execution that reruns one family reuses the other families' runs (DVC skips their stages),
which keep their own pipeline id. So the compare stage adds its execution's id to
`genbench.executions` (a comma-separated list) of every training and evaluation run it compared,
found through the sha256 of the metrics file each evaluation run wrote:
`tags.genbench.executions LIKE '%<id>%'` finds every run an execution used, reused or not.

Later stages never reopen a finished run with start_run (that would move its end time, and so
its duration, to the later stage): evaluation logs a run of its own, and the report and the
execution tags are added through MlflowClient, which leaves status and end time as they are.
"""

import contextlib
import copy
import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import mlflow
import numpy as np
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.types import Schema, TensorSpec

from genbench.errors import GenbenchError
from genbench.files import flatten, sha256_file
from genbench.layout import run_name
from genbench.system import DEFAULT_TRACKING_URI, git_commit, store_problem

EXPERIMENT = "genbench"
EXECUTIONS = "genbench.executions"  # the ids of every execution that used a run (see above)

if TYPE_CHECKING:  # torch loads only where a model is logged, not in compare or report
    from torch import nn


class TrackingError(GenbenchError):
    """The configured MLflow tracking store cannot be reached or written."""


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else MLflow's default sqlite file in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in one line, before any compute, when the tracking store cannot take runs: an HTTP
    server that does not answer, a read-only sqlite file or folder, a file store."""
    reason = store_problem(uri, timeout)
    if reason is None:
        return
    if uri.startswith(("http://", "https://")):
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({reason}); start it "
            f"(`mlflow server --host 127.0.0.1 --port ...`) or unset MLFLOW_TRACKING_URI"
        )
    raise TrackingError(
        f"MLFLOW_TRACKING_URI = {uri!r}: {reason}; use a writable {DEFAULT_TRACKING_URI} or an "
        "http:// server, or unset MLFLOW_TRACKING_URI"
    )


def foreign_artifacts(location: str | None) -> bool:
    """A local sqlite store's artifact location outside this project (the working directory):
    MLflow stores absolute paths, so a copied or moved workspace would write into the original."""
    if not tracking_uri().startswith("sqlite:") or not location:
        return False
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return False
    return not Path(parsed.path).resolve().is_relative_to(Path.cwd().resolve())


def project_experiment() -> str:
    """`genbench`, or, when its artifacts live in another checkout (a copied mlflow.db), an
    experiment of this project's own (`genbench@<folder>-<hash>`), so no artifact leaves it."""
    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is None or not foreign_artifacts(found.artifact_location):
        return EXPERIMENT
    here = Path.cwd().resolve()
    name = f"{EXPERIMENT}@{here.name}-{hashlib.sha256(str(here).encode()).hexdigest()[:8]}"
    print(
        f"mlflow: experiment {EXPERIMENT!r} keeps artifacts in {found.artifact_location}, "
        f"outside this project (a copied workspace); logging to experiment {name!r}"
    )
    return name


def pipeline_id(params_file: str | Path) -> str:
    """The id shared by the runs of one pipeline execution (see the module docstring)."""
    if os.environ.get("GENBENCH_PIPELINE_ID"):
        return os.environ["GENBENCH_PIPELINE_ID"]
    text = git_commit() + Path(params_file).read_text()
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def execution_label(pid: str) -> str:
    """A pipeline id as run names show it: whole up to 24 characters (a hash, a DVC experiment),
    else its first 8 characters (a Prefect flow run's uuid)."""
    return pid if len(pid) <= 24 else pid[:8]


def start_run(
    name: str,
    params: dict[str, Any],
    tags: dict[str, str],
    resume_id: str | None,
    system_metrics: bool = False,
) -> str:
    """Start (or, after a resumed training, reopen) the model's run; returns its id.

    With system_metrics, MLflow samples CPU, memory, disk, network (and GPU, when pynvml is
    installed) every MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL seconds (10) as `system/*`.
    """
    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
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
    `budget.*` (the steps, images and FLOPs the equal budget gave it), from the config that is
    also written to the model folder. Runs are named `<family>-seed<seed> · <execution>` and
    tagged `genbench.family` and `genbench.seed`: filter on the family to see its seeds together.

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
    }
    run_params = {
        **config["params"],
        "data": config["data"],
        "seed": seed,
        "budget": config.get("budget", {}),
    }
    name = f"{model}-seed{seed} · {execution_label(pid)}"
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


def run_exists(record: dict, what: str) -> bool:
    """Point mlflow at the (reachable) store and check the recorded run is in it; say so if not."""
    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    try:
        run = MlflowClient().get_run(record["run_id"])
    except MlflowException:
        print(f"mlflow: run {record['run_id']} is not in {uri}; {what} not logged there")
        return False
    if foreign_artifacts(run.info.artifact_uri):
        print(
            f"mlflow: run {record['run_id']} keeps artifacts in {run.info.artifact_uri}, outside "
            f"this project (a copied workspace); {what} not logged there"
        )
        return False
    return True


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


def log_model(net: "nn.Module") -> str:
    """The final generating network as the active run's MLflow PyTorch model `model` (a CPU
    copy), so it shows in the Models tab and can be registered; returns its models:/ URI.

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
        cpu, name="model", pip_requirements=requirements, serialization_format="pickle"
    )
    return logged.model_uri


def log_artifacts(folder: str | Path) -> None:
    """Every file of a folder into the active run's artifacts."""
    mlflow.log_artifacts(str(folder))


def end_run(ok: bool) -> None:
    """Close the active run as FINISHED or FAILED."""
    if mlflow.active_run() is not None:
        mlflow.end_run("FINISHED" if ok else "FAILED")


def run_record() -> dict[str, str]:
    """What later stages need to add to the active run: its id, experiment and store."""
    run = mlflow.active_run()
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "tracking_uri": mlflow.get_tracking_uri(),
    }


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
