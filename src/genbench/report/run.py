"""The `report` stage's work: read every model's outputs, render reports/, log it to MLflow."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from genbench import tracking
from genbench.report.inputs import REAL, MetricsDiff, load_inputs, since
from genbench.report.render import write_report


@dataclass(frozen=True)
class ReportPaths:
    """The folders a report reads (given by dvc.yaml) and the one it writes."""

    metrics: Path  # compare.json, real.json, runs/<family>-<seed>.json and their cards
    models: Path  # the trained model folders
    figures: Path  # the evaluation figures
    data: Path  # prepared data (its meta.json)
    out: Path  # the report folder


def run_report(
    names: list[str],
    paths: ReportPaths,
    *,
    previous_rev: str,
    params_file: str | Path,
    metrics_diff: MetricsDiff,
) -> tuple[Path, int]:
    """Write the report; returns (index.html, how many MLflow runs received it). The change
    section is `metrics_diff` since `previous_rev` (the stage passes DVC's).

    The report needs no tracking store: it is rendered first, then logged where it can be.
    """
    inputs = load_inputs(
        names, paths.metrics, paths.models, paths.figures, paths.data, None, previous_rev
    )
    runs = [r.name for r in inputs.models]
    previous = since(previous_rev, [*runs, REAL], paths.metrics, metrics_diff)
    execution = tracking.pipeline_id(params_file)
    inputs = dataclasses.replace(inputs, previous=previous, execution=execution)
    page = write_report(inputs, paths.out)
    logged = tracking.log_report(params_file, paths.out)  # a report run of the execution
    return page, 0 if logged is None else 1
