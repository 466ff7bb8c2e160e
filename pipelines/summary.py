"""What a genbench flow run shows beside its task states: the metric table and where the report
is, read from the pipeline's outputs. No prefect here; flows.py attaches these as artifacts.

The table uses the report's own columns and number format (genbench.report.table), so the
artifact and reports/index.html never disagree on a value.
"""

import json
from pathlib import Path
from typing import Any

from genbench import tracking
from genbench.core.errors import GenbenchError
from genbench.core.layout import COMPARE, MARKDOWN, METRICS_DIR, REPORTS_DIR, RUNS
from genbench.core.metric_registry import EXTRACTOR, NEAR_REAL, SCORES
from genbench.diff import changes, markdown, since
from genbench.report.table import (
    COLUMNS,
    Column,
    finite,
    fmt,
    lookup,
    mean_text,
    path_of,
)
from pipelines.repro import absolute_tracking_uri

# The compare stage's and the report stage's outs, relative to the project root (layout.py).
COMPARE_FILE = f"{METRICS_DIR}/{COMPARE}"
RUNS_DIR = f"{METRICS_DIR}/{RUNS}"  # <family>-<seed>.json, one per evaluated model
REPORT_MARKDOWN = f"{REPORTS_DIR}/{MARKDOWN}"
HEADLINE_START = "## Headline\n"  # its headline section (report/templates/report.md.j2)
# The metrics the compare stage ranks: the report's headline.
HEADLINE = tuple(column for column in COLUMNS if column.verdict)


def metrics_markdown(root: Path) -> str | None:
    """The metric table as Markdown: from metrics/compare.json (mean ± CI per family, and the
    verdict per metric), else one row per run from metrics/runs/*.json; None when neither is
    there (e.g. a flow run with --targets that stop before evaluation)."""
    compare = _read(root / COMPARE_FILE)
    if compare and compare.get("families"):
        return comparison_markdown(compare, (compare.get("real") or {}).get("metrics"))
    files = sorted((root / RUNS_DIR).glob("*.json"))
    runs = {path.stem: _read(path) for path in files if not path.stem.endswith(".protocol")}
    runs = {name: values for name, values in runs.items() if values}
    extractors = {name: str(metrics.get(EXTRACTOR, "")) for name, metrics in runs.items()}
    return runs_markdown(runs, extractors) if runs else None


def comparison_markdown(compare: dict[str, Any], real: dict[str, Any] | None = None) -> str:
    """Each family's mean ± half-width of the t interval over its seeds (test split), the
    real-data floor when `real` (its metrics, as compare.json carries them) is given, and a
    last row with the verdict per metric; the significantly best family's cell in bold."""
    extractor, verdicts = compare.get("extractor", ""), compare.get("verdicts", {})
    level, seeds = round(100 * compare.get("confidence", 0.95)), compare.get("seeds", [])
    rows = []
    for family, stats in compare["families"].items():
        cells = []
        for column in HEADLINE:
            found = lookup(stats, path_of(column))
            text = mean_text(found, column) if _has_mean(found) else "-"
            best = verdicts.get(column.metric, {}).get("best") == family
            cells.append(f"**{text}**" if best and text != "-" else text)
        rows.append([family, *cells])
    if real:
        rows.append(["real data", *(_number(_real_value(real, c), c) for c in HEADLINE)])
    rows.append(["verdict", *(_verdict(verdicts.get(c.metric)) for c in HEADLINE)])
    intro = (
        f"Test split, feature extractor `{extractor}`: mean ± half-width of the {level}% "
        f"t interval over {len(seeds)} seed(s) {seeds}. Verdict: the families in ordered "
        "groups, best first (A ≻ B separated, A ≈ B equivalent, {A, B} not separated; "
        f"{compare.get('test', 'the compare stage')}); bold: the family separated from every "
        "other. Headline and the report in MLflow: the `genbench-headline` artifact."
    )
    return "\n".join([intro, "", *_table(["family", *_labels(extractor)], rows)])


def runs_markdown(runs: dict[str, dict[str, Any]], extractors: dict[str, str]) -> str:
    """One row per evaluated model (no compare.json yet: no intervals, no verdict);
    `extractors`: each run's feature extractor, as its metrics file names it."""
    rows = []
    for name, metrics in runs.items():
        cells = [lookup(metrics, path_of(column)) for column in HEADLINE]
        rows.append([name, *(_number(value, c) for value, c in zip(cells, HEADLINE, strict=True))])
    intro = (
        f"One row per model ({COMPARE_FILE} is missing: no intervals or verdicts until the "
        "compare stage runs); test split."
    )
    labels = _labels(", ".join(sorted({extractors.get(name, "") for name in runs} - {""})))
    return "\n".join([intro, "", *_table(["run", *labels], rows)])


def headline_markdown(root: Path) -> str | None:
    """reports/report.md's headline section (the verdict per metric, in Markdown), or None when
    there is no report."""
    try:
        text = (root / REPORT_MARKDOWN).read_text(encoding="utf-8")
    except OSError:
        return None
    if HEADLINE_START not in text:
        return None
    section = text.split(HEADLINE_START, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    return "## Headline\n" + section.strip()


def diff_markdown(root: Path, rev: str = "HEAD") -> str | None:
    """`genbench diff <rev>`'s table (what changed in every metrics file), or None when it
    cannot be told (no git repository, no such revision, no metrics yet)."""
    try:
        commit, found = since(rev, root / METRICS_DIR)
    except GenbenchError:
        return None
    return markdown(rev, commit, changes(found)) if found else None


def report_run(root: Path, pipeline_id: str) -> dict | None:
    """The report stage's MLflow run of this execution (its record), or None."""
    return tracking.find_report_run(pipeline_id, absolute_tracking_uri(root))


def mlflow_links(record: dict | None) -> str:
    """Where the report is in MLflow, as Markdown: links when the store has a web address (a
    browser opens them from Prefect's UI), else how to open it."""
    if record is None:
        return "The report was not logged to MLflow: see the report stage's log."
    links = tracking.ui_links(record)
    if links:
        return (
            f"[The report in MLflow]({links['report']}) · "
            f"[the MLflow experiment]({links['experiment']})"
        )
    uri = record["tracking_uri"]
    return (
        f"The report is MLflow run `{record['run_id']}` (artifacts under `report/`) in `{uri}`: "
        f"`mlflow ui --backend-store-uri {uri}` serves it (experiment {record['experiment_id']})."
    )


def _real_value(real: dict[str, Any], column: Column) -> Any:
    """The floor's value of a column; diversity: that of the real test images (as the report)."""
    if column.better == NEAR_REAL:
        return lookup(real, ["ssim", "diversity_real"])
    return lookup(real, path_of(column))


def _verdict(found: dict[str, Any] | None) -> str:
    """The ranking in ordered groups, and a borderline mark."""
    if not found or not found.get("ranking"):
        return "-"
    return found["ranking"] + (" (borderline)" if found.get("borderline") else "")


def _labels(extractor: str) -> list[str]:
    """Column headers; the extractor's metrics name it (FIDs of two extractors never mix)."""
    return [
        f"{c.label} ({extractor})" if c.group == SCORES and extractor else c.label for c in HEADLINE
    ]


def _has_mean(found: Any) -> bool:
    return isinstance(found, dict) and finite(found.get("mean"))


def _number(value: Any, column: Column) -> str:
    return fmt(float(value), column.digits, column.unit) if finite(value) else "-"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _read(path: Path) -> dict[str, Any] | None:
    """A JSON object, or None when the file is missing or not one (the artifact is then left
    out; the stage that writes it reports its own errors)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
