"""The only package that imports mlflow. Append-only: each stage logs one run of its own (a
training per family and seed, an evaluation of it, a compare and a report run per execution)
and never edits another's; lineage lives in dvc.lock.

Every run is tagged with its DVC stage, the git commit and `genbench.pipeline_id`, the
execution that made it (one `make run` / `dvc repro`, see store.pipeline_id); model runs also
with `genbench.family` and `genbench.seed`. Later runs find earlier ones by content, reading
only: an evaluation finds the training run (and its logged model) that logged the weights it
scores by their sha256, and nests under it through its own `mlflow.parentRunId` tag; the
compare run lists in runs.json every run behind the metrics files it compared, reused ones
included, found by the files' sha256.

Modules: `store` (where runs go, the execution id, starting a stage's run), `runs` (the
training's run), `results` (evaluation, compare and report runs).
"""

from genbench.tracking.results import (
    Evaluation,
    evaluation_run,
    find_report_run,
    log_ablation,
    log_comparison,
    log_evaluation,
    log_report,
    log_snapshot_grid,
    ui_links,
)
from genbench.tracking.runs import (
    log_dataset,
    log_metrics,
    log_model,
    log_model_dir,
    run_record,
    training_run,
)
from genbench.tracking.store import (
    EXPERIMENT,
    TrackingError,
    check_reachable,
    execution_label,
    model_name,
    pipeline_id,
    start_run,
    tracking_uri,
)

__all__ = [
    "log_ablation",
    "EXPERIMENT",
    "Evaluation",
    "TrackingError",
    "check_reachable",
    "evaluation_run",
    "execution_label",
    "find_report_run",
    "log_comparison",
    "log_dataset",
    "log_evaluation",
    "log_metrics",
    "log_model",
    "log_model_dir",
    "log_report",
    "log_snapshot_grid",
    "model_name",
    "pipeline_id",
    "run_record",
    "start_run",
    "tracking_uri",
    "training_run",
    "ui_links",
]
