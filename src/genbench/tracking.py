"""The only module that imports mlflow: one run per trained model (family and seed), grouped
per pipeline run and per family.

Grouping: every run carries the tags `genbench.family` and `genbench.seed`, and the tag
`genbench.pipeline_id`, shared by the stages of one
`make run` / `dvc repro` (GENBENCH_PIPELINE_ID when set, else a hash of the git commit and
params.yaml). A shared tag rather than a parent run, because stages are separate processes that
DVC may rerun alone: a tag needs no stage to create a parent first, and the MLflow UI filters on
it (`tags.genbench.pipeline_id = '...'`).
"""

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from genbench.errors import GenbenchError
from genbench.files import flatten
from genbench.layout import run_name
from genbench.system import DEFAULT_TRACKING_URI, git_commit, store_problem

EXPERIMENT = "genbench"


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


def start_run(
    name: str, params: dict[str, Any], tags: dict[str, str], resume_id: str | None
) -> str:
    """Start (or, after a resumed training, reopen) the model's run; returns its id."""
    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    if resume_id:
        try:
            info = MlflowClient().get_run(resume_id).info
            if info.status != "FINISHED" and not foreign_artifacts(info.artifact_uri):
                return mlflow.start_run(run_id=resume_id).info.run_id
        except MlflowException:
            pass  # the run was deleted, or lives in another store: start a new one
    mlflow.set_experiment(project_experiment())
    run = mlflow.start_run(run_name=name, tags=tags)
    mlflow.log_params(flatten(params))
    return run.info.run_id


def start_training_run(
    model: str, params_file: str | Path, config: dict, run_hash: str, workdir: Path
) -> str:
    """Start `model`'s run with its tags, or reopen the one a resumed training began.

    Logged params: the model's section (`gan.lr_g`, ...), `data.*`, `seed` and `budget.*` (the
    steps, images and FLOPs the equal budget gave it), from the config that is also written to
    the model folder. Runs are named `<family>-seed<seed>` and tagged `genbench.family` and
    `genbench.seed`: filter on the family to see all its seeds together.

    The run id is kept in workdir (beside the checkpoints) so a killed and resumed training logs
    into one run.
    """
    id_file = workdir / "mlflow_run_id"
    resume_id = id_file.read_text().strip() if id_file.exists() else None
    seed = config["seed"]
    tags = {
        "genbench.family": model,
        "genbench.seed": str(seed),
        "genbench.git_commit": git_commit(),
        "genbench.dvc_stage": f"train@{run_name(model, seed)}",
        "genbench.params_hash": run_hash,
        "genbench.pipeline_id": pipeline_id(params_file),
    }
    run_params = {
        model: config["params"],
        "data": config["data"],
        "seed": seed,
        "budget": config.get("budget", {}),
    }
    run_id = start_run(f"{model}-seed{seed}", run_params, tags, resume_id)
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


def log_evaluation(record: dict, metrics: dict, files: list[Path]) -> bool:
    """Add evaluation metrics (as `eval.<group>.<name>`) and files to the model's training run;
    the curve's points (metrics["curve"]) as `eval.curve.<name>` with the training FLOPs as the
    step, so MLflow's charts draw quality against compute.

    Returns False, saying why, when that run is not in the current tracking store.
    """
    if not run_exists(record, "evaluation"):
        return False
    final = {key: value for key, value in metrics.items() if key != "curve"}
    points = metrics["curve"]["points"] if "curve" in metrics else []
    with mlflow.start_run(run_id=record["run_id"]):
        mlflow.log_metrics(flatten(final, "eval"))
        for point in points:
            found = {f"eval.curve.{k}": point[k] for k in ("fid", "kid_mean", "kid_std")}
            mlflow.log_metrics(found, step=int(point["flops"]))
        for path in files:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    return True


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
        if run_exists(record, "report"):
            with mlflow.start_run(run_id=record["run_id"]):
                mlflow.log_artifacts(str(folder), artifact_path=artifact_path)
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
    """Per-step metrics into the active run (the engine's log_metrics callable)."""
    mlflow.log_metrics(values, step=step)


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
    params_file: str | Path, values: dict[str, float], seeds: list, file: Path
) -> bool:
    """The compare stage's aggregates (`<family>.<group>.<metric>.mean|ci_low|ci_high`) and
    compare.json as a run of their own, named `compare` and tagged with the pipeline id, so the
    MLflow UI shows them beside the runs of the same execution. False, saying why in one line,
    when the store cannot take it."""
    try:
        uri = tracking_uri()
        check_reachable(uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(project_experiment())
        tags = {
            "genbench.dvc_stage": "compare",
            "genbench.git_commit": git_commit(),
            "genbench.pipeline_id": pipeline_id(params_file),
        }
        with mlflow.start_run(run_name="compare", tags=tags):
            mlflow.log_params({"seeds": ",".join(map(str, seeds)), "n_seeds": len(seeds)})
            mlflow.log_metrics(values)
            mlflow.log_artifact(str(file))
        return True
    except (TrackingError, MlflowException, OSError) as err:
        print(f"mlflow: comparison not logged ({str(err).splitlines()[0][:200]})")
        return False
