"""Where runs go: the tracking store (MLFLOW_TRACKING_URI or the project's sqlite file), whether
it can take runs, the project's experiment, and the pipeline execution's id and label."""

import hashlib
import os
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from genbench.core.errors import GenbenchError
from genbench.core.system import DEFAULT_TRACKING_URI, git, store_problem

EXPERIMENT = "genbench"
EXECUTIONS = "genbench.executions"  # the ids of every execution that used a run (see __init__)
# What an execution runs: the code and the stage graph (params.yaml is hashed whole). The files
# stages write into git (dvc.lock, metrics/, reports/) are left out, so the id stays the same
# from a run's first stage to its last (with them it changed once the first stage wrote).
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
EXECUTION_INPUTS = ("src", "stages", "dvc.yaml")
# MLflow samples system metrics every this many seconds unless MLFLOW_SYSTEM_METRICS_SAMPLING_
# INTERVAL says otherwise (MLflow's default, 10, gives a training of 20-47 s two to four points)
SYSTEM_METRICS_INTERVAL = 1.0
# The flow sets it to its flow run's URL: every run of the execution carries it as a tag
FLOW_RUN_URL = "GENBENCH_FLOW_RUN_URL"


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
        return _model_training(EXPERIMENT)
    here = Path.cwd().resolve()
    name = f"{EXPERIMENT}@{here.name}-{hashlib.sha256(str(here).encode()).hexdigest()[:8]}"
    print(
        f"mlflow: experiment {EXPERIMENT!r} keeps artifacts in {found.artifact_location}, "
        f"outside this project (a copied workspace); logging to experiment {name!r}"
    )
    return _model_training(name)


def _model_training(name: str) -> str:
    """Create the experiment `name` if needed, marked as model training, so MLflow 3's UI opens
    it on runs and charts rather than its GenAI views; returns the name."""
    found = mlflow.get_experiment_by_name(name)
    try:
        experiment = found.experiment_id if found else mlflow.create_experiment(name)
    except MlflowException:  # another stage created it meanwhile
        found = mlflow.get_experiment_by_name(name)
        experiment = found.experiment_id
    if not found or found.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:
        MlflowClient().set_experiment_tag(experiment, EXPERIMENT_KIND, MODEL_TRAINING)
    return name


def pipeline_id(params_file: str | Path) -> str:
    """The id shared by the runs of one pipeline execution (see the package docstring):
    GENBENCH_PIPELINE_ID, else a hash of HEAD, the uncommitted changes to EXECUTION_INPUTS and
    the params file."""
    if os.environ.get("GENBENCH_PIPELINE_ID"):
        return os.environ["GENBENCH_PIPELINE_ID"]
    try:
        head = git("rev-parse", "HEAD").stdout.strip()
        changes = git("diff", "HEAD", "--", *EXECUTION_INPUTS).stdout
    except OSError:  # no git: the params alone
        head, changes = "unknown", ""
    text = head + changes + Path(params_file).read_text()
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def system_metrics_interval() -> float:
    """Seconds between system metric samples: MLflow's variable when set, else 1."""
    found = os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL")
    return float(found) if found else SYSTEM_METRICS_INTERVAL


def run_tags() -> dict[str, str]:
    """Tags every run of an execution carries besides its own: the flow run's URL, when a
    Prefect flow runs the stages."""
    url = os.environ.get(FLOW_RUN_URL)
    return {"genbench.flow_run_url": url} if url else {}


def model_name(family: str, seed: int | str) -> str:
    """A model as MLflow names it: its runs (`gan-seed0 · <execution>`) and its logged model."""
    return f"{family}-seed{seed}"


def execution_label(pid: str) -> str:
    """A pipeline id as run names show it: whole up to 24 characters (a hash, a DVC experiment),
    else its first 8 characters (a Prefect flow run's uuid)."""
    return pid if len(pid) <= 24 else pid[:8]


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
