"""Where runs go: the tracking store (MLFLOW_TRACKING_URI or the project's sqlite file), whether
it can take runs, the project's experiment, the pipeline execution's id and label, and the one
way a stage starts its own run."""

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from genbench.core.errors import GenbenchError
from genbench.core.system import DEFAULT_TRACKING_URI, git, git_commit, store_problem

EXPERIMENT = "genbench"
# The sha256 of the weights file a training run wrote and an evaluation run scored: it joins
# the two (and the training's logged model), by content rather than by run id
WEIGHTS_SHA256 = "genbench.weights_sha256"
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
# Set by the flow when a parallel worker runs a stage in a worktree of the project (deleted
# afterwards): the project's own folder, where the experiment's artifacts belong
PROJECT_ROOT = "GENBENCH_PROJECT_ROOT"


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


def project_root() -> Path:
    """The project's folder: GENBENCH_PROJECT_ROOT under a parallel worker, else the cwd."""
    return Path(os.environ.get(PROJECT_ROOT) or Path.cwd()).resolve()


def _foreign_artifacts(location: str | None) -> bool:
    """A local sqlite store's artifact location outside this project (the working directory):
    MLflow stores absolute paths, so a copied or moved workspace would write into the original."""
    if not tracking_uri().startswith("sqlite:") or not location:
        return False
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return False
    return not Path(parsed.path).resolve().is_relative_to(project_root())


def project_experiment() -> str:
    """`genbench`, or, when its artifacts live in another checkout (a copied mlflow.db), an
    experiment of this project's own (`genbench@<folder>-<hash>`), so no artifact leaves it."""
    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is None or not _foreign_artifacts(found.artifact_location):
        return _model_training(EXPERIMENT)
    here = project_root()
    name = f"{EXPERIMENT}@{here.name}-{hashlib.sha256(str(here).encode()).hexdigest()[:8]}"
    print(
        f"mlflow: experiment {EXPERIMENT!r} keeps artifacts in {found.artifact_location}, "
        f"outside this project (a copied workspace); logging to experiment {name!r}"
    )
    return _model_training(name)


def _artifacts() -> str | None:
    """A new experiment's artifact folder: MLflow's default (<cwd>/mlruns/<id>) unless the stage
    runs in a worker's worktree, whose folder is deleted afterwards: then the project's."""
    if os.environ.get(PROJECT_ROOT) and tracking_uri().startswith("sqlite:"):
        return str(project_root() / "mlruns" / "genbench-parallel")
    return None


def _model_training(name: str) -> str:
    """Create the experiment `name` if needed, marked as model training, so MLflow 3's UI opens
    it on runs and charts rather than its GenAI views; returns the name."""
    found = mlflow.get_experiment_by_name(name)
    try:
        experiment = found.experiment_id if found else mlflow.create_experiment(name, _artifacts())
    except MlflowException:  # another stage created it meanwhile
        found = mlflow.get_experiment_by_name(name)
        experiment = found.experiment_id
    if not found or found.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:
        MlflowClient().set_experiment_tag(experiment, EXPERIMENT_KIND, MODEL_TRAINING)
    return name


def pipeline_id(params_file: str | Path) -> str:
    """The id shared by the runs of one pipeline execution (one `make run` / `dvc repro`):
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


def model_name(family: str, seed: int | str) -> str:
    """A model as MLflow names it: its runs (`gan-seed0 · <execution>`) and its logged model."""
    return f"{family}-seed{seed}"


def execution_label(pid: str) -> str:
    """A pipeline id as run names show it: whole up to 24 characters (a hash, a DVC experiment),
    else its first 8 characters (a Prefect flow run's uuid)."""
    return pid if len(pid) <= 24 else pid[:8]


@contextlib.contextmanager
def start_run(
    params_file: str | Path,
    stage: str,
    name: str,
    tags: dict[str, str],
    system_metrics: bool = False,
) -> Iterator[Run]:
    """A new run of the calling stage's own, `<name> · <execution>`, in the project's experiment:
    open for the block, ended FINISHED, or FAILED when the block raises. Tagged with the DVC
    stage, the execution id, the git commit and, under a Prefect flow, the flow run's URL,
    besides `tags`. No stage reopens or edits a run it did not start here.

    With system_metrics, MLflow samples CPU, memory, disk, network (and GPU, when pynvml is
    installed) every SYSTEM_METRICS_INTERVAL seconds as `system/*`.
    """
    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)  # where this process's own runs go
    mlflow.set_system_metrics_sampling_interval(system_metrics_interval())
    mlflow.set_experiment(project_experiment())
    pid, url = pipeline_id(params_file), os.environ.get(FLOW_RUN_URL)
    tags = {
        "genbench.dvc_stage": stage,
        "genbench.pipeline_id": pid,
        "genbench.git_commit": git_commit(),
        **({"genbench.flow_run_url": url} if url else {}),
        **tags,
    }
    name = f"{name} · {execution_label(pid)}"
    with mlflow.start_run(run_name=name, tags=tags, log_system_metrics=system_metrics) as run:
        yield run


def newest_run(client: MlflowClient, experiment_id: str, query: str) -> Run | None:
    """The newest run of the experiment that `query` (MLflow's search syntax) matches, or None."""
    found = client.search_runs(
        [experiment_id], query, max_results=1, order_by=["attributes.start_time DESC"]
    )
    return found[0] if found else None


def record_of(run: Run, uri: str) -> dict[str, str]:
    """What links to a run: its id, experiment and store."""
    return {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "tracking_uri": uri}
