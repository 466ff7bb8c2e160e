"""The report rendered from fixture outputs: table, best marks, escaping, change since a commit."""

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from dvc.repo import Repo
from markupsafe import escape

from genbench.core.errors import GenbenchError
from genbench.evaluation.card import protocol_id
from genbench.report.inputs import REAL, ReportInputs, load_inputs, since
from genbench.report.render import write_report
from stages.report import dvc_metrics_diff
from tests.report_fixture import HOSTILE, NAMES, SEEDS, write_outputs

ODD_FOLDER = 'prepared <b>&"x"'  # a data path with characters HTML must not take as markup


class Tables(HTMLParser):
    """Every table of a page as rows of (cell text, cell class)."""

    def __init__(self):
        super().__init__()
        self.tables, self.cell = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.current = self.tables.setdefault(attrs.get("id") or len(self.tables), [])
        elif tag == "tr":
            self.current.append([])
        elif tag in ("td", "th"):
            self.cell = ["", attrs.get("class") or ""]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.current[-1].append(tuple(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[0] += data


def load(root: Path, previous=None) -> ReportInputs:
    """The report's inputs from fixture outputs, the data under a folder name HTML must escape."""
    data = root / "data" / ODD_FOLDER
    if not data.exists():
        (root / "data/prepared").rename(data)
    return load_inputs(
        list(NAMES), root / "metrics", root / "models", root / "figures", data, previous
    )


def render(root: Path, previous=None, out="reports") -> tuple[str, str]:
    page = write_report(load(root, previous), root / out)
    return page.read_text(), (root / out / "report.md").read_text()


def test_table_shows_mean_and_interval_and_marks_only_a_significant_best(tmp_path):
    metrics = write_outputs(tmp_path)
    comparison = json.loads((tmp_path / "metrics/compare.json").read_text())
    page, markdown = render(tmp_path)
    rows = Tables()
    rows.feed(page)
    header, *body = rows.tables["metric-table"]
    columns = [text for text, _ in header]
    assert [row[0][0] for row in body] == [*NAMES, "real data"]
    fid = comparison["families"]["ddpm"]["evaluator"]["fid"]
    seeds = [metrics[f"ddpm-{s}"]["evaluator"]["fid"] for s in SEEDS]
    assert fid["values"] == seeds and fid["n"] == 3
    text = f"{fid['mean']:.2f} ± {fid['half']:.2f}"
    assert f"| ddpm | {'**' + text + '**'} |" in markdown.replace(" |", " |")
    marked = {columns[i]: row[0][0] for row in body for i, c in enumerate(row) if c[1] == "best"}
    # planted: the DDPM's FID and KID are far lower; every other metric is a tie
    assert marked == {"FID": "ddpm", "KID": "ddpm"}
    assert f"{metrics[REAL]['evaluator']['fid']:.2f}" in [text for text, _ in body[-1]]


def test_headline_ranks_in_groups_and_says_not_separated_where_nothing_is_shown(tmp_path):
    write_outputs(tmp_path)
    comparison = json.loads((tmp_path / "metrics/compare.json").read_text())
    page, markdown = render(tmp_path)
    fid_line = next(line for line in markdown.splitlines() if line.startswith("- **FID**"))
    # planted FID levels: ddpm 5, gan 20, vae 22, seed noise 0.3: every pair separated
    assert fid_line.startswith("- **FID**: ddpm ≻ gan ≻ vae: ddpm ")
    assert "\\(a\\)" in fid_line and "\\(95% CI, 3 seeds; log scale\\)" in fid_line
    is_line = next(line for line in markdown.splitlines() if line.startswith("- **IS**"))
    # planted IS: one level for all, noise 1: neither separated nor shown equivalent
    assert is_line.startswith("- **IS**: \\{") and comparison["verdicts"]["is_mean"]["best"] is None
    assert "not separated with 3 seeds" in markdown and " tie" not in markdown
    tables = Tables()
    tables.feed(page)
    header, *pairs = tables.tables["pairs-table"]
    assert [c for c, _ in header][:3] == ["metric", "pair (better first)", "effect [95% CI]"]
    fid_pairs = {row[1][0]: row for row in pairs if row[0][0] == "FID"}
    assert set(fid_pairs) == {"ddpm vs gan", "ddpm vs vae", "gan vs vae"}
    assert fid_pairs["ddpm vs gan"][2][0].startswith("ratio 0.2")  # 5 / 20
    assert fid_pairs["ddpm vs gan"][3][0] == "1.00"  # every ddpm seed beats every gan seed
    is_pairs = [row for row in pairs if row[0][0] == "IS"]
    assert all("seeds" in row[7][0] for row in is_pairs)  # how many would separate them
    # training times come from the models' train_stats.json, not from evaluation's metrics
    assert comparison["families"]["gan"]["cost"]["train_seconds"]["values"] == [40, 41, 42]
    assert "train_seconds" not in json.loads((tmp_path / "metrics/runs/gan-0.json").read_text())
    assert "Feature extractor for FID, KID, IS, precision and recall: <strong>evaluator" in page
    assert page.index("Feature extractor") < page.index('id="metric-table"')
    budget = Tables()
    budget.feed(page)
    assert [row[2][0] for row in budget.tables["budget-table"][1:]] == ["100"] * 3


def test_one_seed_gives_no_verdict(tmp_path):
    write_outputs(tmp_path, seeds=(0,))
    _, markdown = render(tmp_path)
    fid_line = next(line for line in markdown.splitlines() if line.startswith("- **FID**"))
    assert "no verdict: one seed gives no interval" in fid_line and "is best" not in markdown


def test_strings_from_data_are_escaped(tmp_path):
    from markdown_it import MarkdownIt

    write_outputs(tmp_path)
    page, markdown = render(tmp_path)
    assert str(escape(HOSTILE)) in page and str(escape(ODD_FOLDER)) in page  # jinja2's escaping
    assert "<script>" not in page and "<b>" not in page
    shown = (
        MarkdownIt("commonmark").enable("table").render(markdown)
    )  # what a repository browser makes of it
    assert "<script>" not in shown and "<b>" not in shown and 'href="https://evil' not in shown
    assert "[link](https://evil.example)" in shown  # the class name shows as the text it is
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;|&amp;" in shown
    assert "prepared &lt;b&gt;&amp;&quot;x&quot;" in shown


def test_html_is_self_contained_and_markdown_images_exist(tmp_path):
    write_outputs(tmp_path)
    page, markdown = render(tmp_path)
    sources = [line.split('src="')[1].split('"')[0] for line in page.splitlines() if "<img" in line]
    # compute and seed figures, grids (first seeds + real), reconstructions, 3 curves
    assert len(sources) == 2 + 4 + 1 + 3
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert "http://" not in page.replace("http://127.0.0.1:5000", "")  # only the MLflow links
    images = [line.split("](<")[1].rstrip(">)") for line in markdown.splitlines() if "![" in line]
    assert len(images) == len(sources)
    assert all((tmp_path / "reports" / image).stat().st_size > 0 for image in images)


def git(root: Path, *args: str) -> None:
    identity = ["-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def commit_outputs(root: Path, salt: int) -> dict:
    """Fixture outputs committed in a fresh git + DVC repository (DVC computes the diff)."""
    old = write_outputs(root, salt=salt)
    git(root, "init", "-q")
    Repo.init(root).close()
    git(root, "add", "metrics", ".dvc")
    git(root, "commit", "-q", "-m", "previous")
    return old


def runs(seeds=SEEDS) -> list[str]:
    return [f"{family}-{seed}" for family in NAMES for seed in seeds]


def test_change_since_the_previous_commit(tmp_path):
    old = commit_outputs(tmp_path, salt=0)
    new = write_outputs(tmp_path, salt=1)  # other numbers in the workspace
    previous = since("HEAD", [*runs(), REAL], tmp_path / "metrics", dvc_metrics_diff)
    assert set(previous.diff) == set(previous.cards) == {*runs(), REAL}
    for name in runs():  # DVC's diff: every key, old from the commit, new from the workspace
        entry = previous.diff[name]["evaluator.fid"]
        assert (entry["old"], entry["new"]) == (
            old[name]["evaluator"]["fid"],
            new[name]["evaluator"]["fid"],
        )
    page, markdown = render(tmp_path, previous)
    rows = Tables()
    rows.feed(page)
    _, *changes = rows.tables["change-table"]
    found = {(row[0][0], row[1][0]): row[5][0] for row in changes}
    for name in runs():
        was, now = old[name]["evaluator"]["fid"], new[name]["evaluator"]["fid"]
        assert found[(f"metrics/runs/{name}.json", "evaluator.fid")] == (
            "better" if now < was else "worse"
        )
        was, now = old[name]["evaluator"]["recall"], new[name]["evaluator"]["recall"]
        assert found[(f"metrics/runs/{name}.json", "evaluator.recall")] == (
            "better" if now > was else "worse"
        )
    assert found[("metrics/runs/gan-0.json", "cost.generator_parameters")] == "changed"
    change = {(row[0][0], row[1][0]): row[4][0] for row in changes}
    was, now = old["gan-0"]["evaluator"]["fid"], new["gan-0"]["evaluator"]["fid"]
    assert change[("metrics/runs/gan-0.json", "evaluator.fid")] == f"{now - was:+,.5g}"
    assert f"Change since HEAD ({previous.commit})" in page
    assert f"dvc metrics diff {previous.commit}" in markdown


def test_only_what_moved_is_listed_unchanged_timings_too(tmp_path):
    commit_outputs(tmp_path, salt=0)  # the workspace as committed, but one FID
    path = tmp_path / "metrics/runs/gan-0.json"
    metrics = json.loads(path.read_text())
    metrics["evaluator"]["fid"] += 1.0
    path.write_text(json.dumps(metrics))
    previous = since("HEAD", [*runs(), REAL], tmp_path / "metrics", dvc_metrics_diff)
    page, _ = render(tmp_path, previous)
    rows = Tables()
    rows.feed(page)
    found = [(row[0][0], row[1][0], row[5][0]) for row in rows.tables["change-table"][1:]]
    assert found == [("metrics/runs/gan-0.json", "evaluator.fid", "worse")]


def change_protocol(root: Path, name: str, **card_values) -> None:
    """Rewrite a run's card and the digest its metrics file carries, as an evaluation under
    another protocol would."""
    path = root / f"metrics/runs/{name}.protocol.json"
    card = json.loads(path.read_text()) | card_values
    path.write_text(json.dumps(card))
    metrics = json.loads((root / f"metrics/runs/{name}.json").read_text())
    metrics["protocol"]["id"] = protocol_id(card)
    (root / f"metrics/runs/{name}.json").write_text(json.dumps(metrics))


def test_changes_under_another_protocol_or_nan_are_not_called_better(tmp_path):
    commit_outputs(tmp_path, salt=0)
    write_outputs(tmp_path, salt=1)
    change_protocol(tmp_path, "ddpm-0", num_samples=500)  # fewer samples
    change_protocol(tmp_path, "vae-1", kid={"subset_size": 180})  # another KID rule
    metrics = json.loads((tmp_path / "metrics/runs/gan-0.json").read_text())
    metrics["evaluator"]["is_mean"] = float("nan")
    (tmp_path / "metrics/runs/gan-0.json").write_text(json.dumps(metrics))
    previous = since("HEAD", [*runs(), REAL], tmp_path / "metrics", dvc_metrics_diff)
    page, _ = render(tmp_path, previous)
    rows = Tables()
    rows.feed(page)
    found = {(row[0][0], row[1][0]): row[5][0] for row in rows.tables["change-table"][1:]}
    # one row per file made under another protocol, saying which part changed
    apart = {
        r[0][0]: (r[1][0], r[4][0])
        for r in rows.tables["change-table"][1:]
        if r[5][0] == "not comparable"
    }
    assert set(apart) == {"metrics/runs/ddpm-0.json", "metrics/runs/vae-1.json"}
    assert apart["metrics/runs/ddpm-0.json"][0].endswith(" quality numbers")
    assert apart["metrics/runs/ddpm-0.json"][1] == "protocol changed: num_samples"
    assert apart["metrics/runs/vae-1.json"][1] == "protocol changed: kid"
    assert ("metrics/runs/ddpm-0.json", "evaluator.fid") not in found
    assert found[("metrics/runs/ddpm-0.json", "cost.generator_parameters")] == "changed"
    # a measured duration moves with the machine's load: never better or worse
    assert found[("metrics/runs/vae-0.json", "cost.sampling_ms_per_image")] == "timing"
    assert found[("metrics/runs/gan-0.json", "evaluator.is_mean")] == "invalid"
    assert found[("metrics/runs/vae-0.json", "evaluator.fid")] in ("better", "worse")
    assert not any(metric == "protocol.id" for _, metric in found)


def test_metrics_from_before_the_protocol_digest_are_judged_by_the_committed_card(tmp_path):
    commit_outputs(tmp_path, salt=0)  # then: no digest in the metrics files
    for name in ("gan-0", "vae-0"):
        path = tmp_path / f"metrics/runs/{name}.json"
        metrics = json.loads(path.read_text())
        del metrics["protocol"]
        path.write_text(json.dumps(metrics))
    git(tmp_path, "commit", "-qam", "no digest")
    write_outputs(tmp_path, salt=1)
    path = tmp_path / "metrics/runs/gan-0.protocol.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"num_samples": 500}))
    previous = since("HEAD", [*runs(), REAL], tmp_path / "metrics", dvc_metrics_diff)
    page, _ = render(tmp_path, previous)
    rows = Tables()
    rows.feed(page)
    found = {(row[0][0], row[1][0]): row[5][0] for row in rows.tables["change-table"][1:]}
    apart = [r for r in rows.tables["change-table"][1:] if r[5][0] == "not comparable"]
    assert [(r[0][0], r[4][0]) for r in apart] == [
        ("metrics/runs/gan-0.json", "protocol changed: num_samples")
    ]
    assert found[("metrics/runs/vae-0.json", "evaluator.fid")] in ("better", "worse")


def test_no_previous_commit_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # not the checkout's
    write_outputs(tmp_path)
    assert since("HEAD", list(NAMES), tmp_path / "metrics", dvc_metrics_diff) is None
    page, _ = render(tmp_path, None)
    assert "No metrics at HEAD to compare with" in page


def test_sparse_outputs_still_render(tmp_path):
    """No classes (unlabelled folder) and a family without curves still render."""
    write_outputs(tmp_path)
    meta = json.loads((tmp_path / "data/prepared/meta.json").read_text())
    del meta["classes"]
    (tmp_path / "data/prepared/meta.json").write_text(json.dumps(meta))
    (tmp_path / "models/vae-0/losses.csv").unlink()
    page, markdown = render(tmp_path)
    assert "classes:" not in page and "vae-0_curves.png" not in markdown
    assert "gan-0_curves.png" in markdown


def test_missing_metrics_fail_in_one_line_and_keep_the_old_report(tmp_path):
    write_outputs(tmp_path)
    page, _ = render(tmp_path)
    (tmp_path / "metrics/runs/vae-1.json").unlink()
    with pytest.raises(
        GenbenchError, match=r"metrics/runs/vae-1.json is missing; run `dvc repro evaluate@vae-1`"
    ):
        render(tmp_path)
    assert (tmp_path / "reports/index.html").read_text() == page


def test_two_feature_extractors_are_never_mixed(tmp_path):
    write_outputs(tmp_path)
    card = json.loads((tmp_path / "metrics/runs/ddpm-2.protocol.json").read_text())
    card["feature_extractor"]["name"] = "inception-v3-compat"
    (tmp_path / "metrics/runs/ddpm-2.protocol.json").write_text(json.dumps(card))
    with pytest.raises(GenbenchError, match="ddpm-2: inception-v3-compat"):
        render(tmp_path)
    assert not (tmp_path / "reports").exists()
