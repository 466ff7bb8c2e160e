"""The `report` stage's work: render compare.json and the evaluation figures into reports/,
then log the folder to MLflow as the execution's report run."""

from dataclasses import dataclass
from pathlib import Path

from genbench import tracking
from genbench.report.inputs import load_inputs
from genbench.report.render import write_report


@dataclass(frozen=True)
class ReportPaths:
    """The files a report reads (given by dvc.yaml) and the folder it writes."""

    compare: Path  # metrics/compare.json: the statistics and every result they came from
    figures: Path  # the evaluation figures, figures/<name>/
    out: Path  # the report folder


def run_report(paths: ReportPaths, *, params_file: str | Path) -> tuple[Path, bool]:
    """Write the report; returns (index.html, whether MLflow took the report run). The page
    depends on the declared inputs only; `params_file` names the execution the run joins.

    The report needs no tracking store: it is rendered first, then logged where it can be.
    """
    page = write_report(load_inputs(paths.compare, paths.figures), paths.out)
    return page, tracking.log_report(params_file, paths.out, paths.compare) is not None
