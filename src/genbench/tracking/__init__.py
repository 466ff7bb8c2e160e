"""The only package that imports mlflow: one run per trained model (family and seed), one per
evaluation of it, and one `compare` run per pipeline execution.

Grouping: every run carries the tags `genbench.family` and `genbench.seed` (not the compare
and report runs), and the tag `genbench.pipeline_id` of the execution that made it, shared by the
stages of one `make run` / `dvc repro` (GENBENCH_PIPELINE_ID when set, else a hash of the git
commit, the uncommitted changes to the code and dvc.yaml, and params.yaml); under a Prefect
flow, also `genbench.flow_run_url`. A shared tag rather than a parent run, because stages are
separate processes that DVC may rerun alone: a tag needs no stage to create a parent first.

An execution that reruns one family reuses the other families' runs (DVC skips their stages),
which keep their own pipeline id. So the compare stage adds its execution's id to
`genbench.executions` (a comma-separated list) of every training and evaluation run it compared,
found through the sha256 of the metrics file each evaluation run wrote:
`tags.genbench.executions LIKE '%<id>%'` finds every run an execution used, reused or not.

Later stages never reopen a finished run with start_run (that would move its end time, and so
its duration, to the later stage): evaluation and the report log runs of their own (an
evaluation's nested under its training run by the `mlflow.parentRunId` tag), and the execution
tags are added through MlflowClient, which leaves status and end time as they are.

Modules: `store` (where runs go, the execution id), `runs` (the training process's run),
`results` (evaluation, report and compare runs). Callers use the names re-exported here.
"""

from genbench.tracking.results import (
    Evaluation,
    evaluation_run,
    find_report_run,
    log_comparison,
    log_evaluation,
    log_report,
    log_snapshot_grid,
    tag_execution,
    ui_links,
)
from genbench.tracking.runs import (
    end_run,
    log_artifacts,
    log_dataset,
    log_metrics,
    log_model,
    run_record,
    start_run,
    start_training_run,
    training_run,
)
from genbench.tracking.store import (
    EXECUTIONS,
    EXPERIMENT,
    TrackingError,
    check_reachable,
    execution_label,
    foreign_artifacts,
    model_name,
    pipeline_id,
    project_experiment,
    run_exists,
    tracking_uri,
)

__all__ = [
    "EXECUTIONS",
    "EXPERIMENT",
    "Evaluation",
    "TrackingError",
    "check_reachable",
    "end_run",
    "evaluation_run",
    "find_report_run",
    "execution_label",
    "foreign_artifacts",
    "log_artifacts",
    "log_comparison",
    "log_dataset",
    "log_evaluation",
    "log_metrics",
    "log_model",
    "model_name",
    "log_report",
    "log_snapshot_grid",
    "pipeline_id",
    "project_experiment",
    "run_exists",
    "run_record",
    "start_run",
    "start_training_run",
    "tag_execution",
    "tracking_uri",
    "training_run",
    "ui_links",
]
