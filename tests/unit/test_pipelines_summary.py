"""The flow run's metric table and report links (pipelines/summary.py), without Prefect."""

import json
import shutil

from pipelines import summary
from tests.conftest import ROOT

COMPARE = json.loads((ROOT / summary.COMPARE_FILE).read_text())


def rows_of(markdown: str) -> dict[str, list[str]]:
    """Table rows by their first cell, the header row included."""
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_comparison_table_has_mean_and_interval_per_family_and_the_verdicts():
    rows = rows_of(summary.metrics_markdown(ROOT))
    header = rows["family"]
    assert header[0] == f"FID ({COMPARE['extractor']})" and len(header) == len(summary.HEADLINE)
    assert set(rows) == {"family", *COMPARE["families"], "real data", "verdict"}
    for position, column in enumerate(summary.HEADLINE):
        verdict = COMPARE["verdicts"][column.metric]
        expected = verdict["ranking"] + (" (borderline)" if verdict["borderline"] else "")
        assert rows["verdict"][position] == expected and " tie" not in expected
        for family in COMPARE["families"]:
            cell = rows[family][position]
            assert " ± " in cell  # several seeds: an interval
            assert cell.startswith("**") == (verdict["best"] == family)
    fid = COMPARE["families"]["gan"]["scores"]["fid"]
    bold = "**" if COMPARE["verdicts"]["fid"]["best"] == "gan" else ""
    assert rows["gan"][0] == f"{bold}{fid['mean']:.2f} ± {fid['half']:.2f}{bold}"


def test_one_seed_gives_means_without_interval():
    one = json.loads(json.dumps(COMPARE))
    for stats in one["families"].values():
        for group in stats.values():
            for value in group.values():
                if isinstance(value, dict) and "half" in value:
                    value.update(half=None, ci_low=None, ci_high=None, n=1)
    rows = rows_of(summary.comparison_markdown(one))
    assert "real data" not in rows  # no metrics/real.json given
    assert all(" ± " not in cell for family in one["families"] for cell in rows[family])


def test_without_compare_json_one_row_per_run_then_nothing(tmp_path):
    assert summary.metrics_markdown(tmp_path) is None
    # the git-tracked metrics files only, as a fresh clone has them (the cards are DVC outs)
    runs = sorted(p.stem for p in (ROOT / summary.RUNS_DIR).glob("*.json"))
    runs = [run for run in runs if not run.endswith(".protocol")]
    (tmp_path / summary.RUNS_DIR).mkdir(parents=True)
    for run in runs:
        shutil.copy(ROOT / summary.RUNS_DIR / f"{run}.json", tmp_path / summary.RUNS_DIR)
    markdown = summary.metrics_markdown(tmp_path)
    rows = rows_of(markdown)
    assert sorted(rows) == sorted(["run", *runs])
    gan = json.loads((ROOT / summary.RUNS_DIR / "gan-0.json").read_text())
    assert rows["gan-0"][0] == f"{gan['scores']['fid']:.2f}"
    assert rows["run"][0] == f"FID ({gan['extractor']})"  # the metrics files name their space
    assert "is missing" in markdown and "verdict" not in rows
    # runs scored in two spaces: the header names both, never one for the other
    gan["extractor"] = "inception-v3-compat"
    (tmp_path / summary.RUNS_DIR / "gan-0.json").write_text(json.dumps(gan))
    rows = rows_of(summary.metrics_markdown(tmp_path))
    assert rows["run"][0] == "FID (evaluator, inception-v3-compat)"


def test_headline_is_the_report_sections_first_part_and_links_say_where(tmp_path):
    found = summary.headline_markdown(ROOT)
    assert found.startswith("## Headline") and "**FID**" in found and "### " not in found
    assert summary.headline_markdown(tmp_path) is None  # no report
    assert "not logged to MLflow" in summary.mlflow_links(None)
    record = {"run_id": "r1", "experiment_id": "3", "tracking_uri": "http://127.0.0.1:5000"}
    links = summary.mlflow_links(record)
    assert "(http://127.0.0.1:5000/#/experiments/3/runs/r1/artifacts/report)" in links
    local = summary.mlflow_links(record | {"tracking_uri": "sqlite:////x/mlflow.db"})
    assert "mlflow ui --backend-store-uri sqlite:////x/mlflow.db" in local
    assert summary.report_run(tmp_path, "exec") is None  # no store: none, and none created
    assert not (tmp_path / "mlflow.db").exists()
