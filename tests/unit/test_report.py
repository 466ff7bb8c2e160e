"""The report rendered from fixture outputs: table, best marks, escaping, change since a commit."""

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from genbench.errors import GenbenchError
from genbench.report.inputs import REAL, committed_at, load_inputs
from genbench.report.render import write_report
from tests.report_fixture import HOSTILE, NAMES, write_outputs

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


def render(root: Path, previous=None, out="reports") -> tuple[str, str]:
    data = root / "data" / ODD_FOLDER
    if not data.exists():
        (root / "data/prepared").rename(data)
    inputs = load_inputs(
        list(NAMES), root / "metrics", root / "models", root / "figures", data, previous
    )
    page = write_report(inputs, root / out)
    return page.read_text(), (root / out / "report.md").read_text()


def test_table_lists_models_and_marks_the_best_per_column(tmp_path):
    metrics = write_outputs(tmp_path)
    page, markdown = render(tmp_path)
    rows = Tables()
    rows.feed(page)
    header, *body = rows.tables["metric-table"]
    columns = [text for text, _ in header]
    assert [row[0][0] for row in body] == [*NAMES, "real data"]
    expected = {
        "FID": min(NAMES, key=lambda n: metrics[n]["evaluator"]["fid"]),
        "IS": max(NAMES, key=lambda n: metrics[n]["evaluator"]["is_mean"]),
        "recall": max(NAMES, key=lambda n: metrics[n]["evaluator"]["recall"]),
        "sampling ms/img": min(NAMES, key=lambda n: metrics[n]["cost"]["sampling_ms_per_image"]),
        "diversity SSIM": min(NAMES, key=lambda n: abs(metrics[n]["ssim"]["diversity"] - 0.344)),
    }
    for label, winner in expected.items():
        index = columns.index(label)
        marked = [row[0][0] for row in body if row[index][1] == "best"]
        assert marked == [winner], label
        fid = f"{metrics[winner]['evaluator']['fid']:.2f}"
        if label == "FID":
            assert f"| {winner} | **{fid}** |" in markdown
    # one model has a reconstruction SSIM: nothing to compare, so nothing marked
    assert not [row for row in body if row[columns.index("recon. SSIM")][1] == "best"]
    kid = metrics["gan"]["evaluator"]
    assert f"{kid['kid_mean']:.3f} ± {kid['kid_std']:.3f}" in page
    assert f"{metrics[REAL]['evaluator']['fid']:.2f}" in [text for text, _ in body[-1]]


def test_headline_and_extractor_are_named(tmp_path):
    metrics = write_outputs(tmp_path)
    page, markdown = render(tmp_path)
    best = min(NAMES, key=lambda n: metrics[n]["evaluator"]["fid"])
    gap = metrics[best]["evaluator"]["fid"] - metrics[REAL]["evaluator"]["fid"]
    line = f"best is **{best}** at {metrics[best]['evaluator']['fid']:.2f}; real-data floor"
    assert f"**FID**: {line}" in markdown and f"gap {gap:+.2f}" in markdown
    assert "Feature extractor for FID, KID, IS, precision and recall: <strong>evaluator" in page
    assert page.index("Feature extractor") < page.index('id="metric-table"')


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
    assert len(sources) == 4 + 1 + 3  # grids (3 models + real), reconstructions, 3 curves
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert "http://" not in page.replace("http://127.0.0.1:5000", "")  # only the MLflow links
    images = [line.split("](<")[1].rstrip(">)") for line in markdown.splitlines() if "![" in line]
    assert len(images) == len(sources)
    assert all((tmp_path / "reports" / image).stat().st_size > 0 for image in images)


def git(root: Path, *args: str) -> None:
    identity = ["-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def commit_outputs(root: Path, seed: int) -> dict:
    old = write_outputs(root, seed=seed)
    git(root, "init", "-q")
    git(root, "add", "metrics")
    git(root, "commit", "-q", "-m", "previous")
    return old


def test_change_since_the_previous_commit(tmp_path):
    old = commit_outputs(tmp_path, seed=0)
    new = write_outputs(tmp_path, seed=1)  # other numbers in the workspace
    previous = committed_at("HEAD", [*NAMES, REAL], tmp_path / "metrics")
    assert previous.metrics == old and set(previous.cards) == {*NAMES, REAL}
    page, markdown = render(tmp_path, previous)
    rows = Tables()
    rows.feed(page)
    _, *changes = rows.tables["change-table"]
    found = {(row[0][0], row[1][0]): row[5][0] for row in changes}
    for name in NAMES:
        was, now = old[name]["evaluator"]["fid"], new[name]["evaluator"]["fid"]
        assert found[(f"metrics/{name}.json", "evaluator.fid")] == (
            "better" if now < was else "worse"
        )
        was, now = old[name]["evaluator"]["recall"], new[name]["evaluator"]["recall"]
        assert found[(f"metrics/{name}.json", "evaluator.recall")] == (
            "better" if now > was else "worse"
        )
    assert found[("metrics/gan.json", "cost.generator_parameters")] == "changed"
    assert f"Change since HEAD ({previous.commit})" in page
    assert f"dvc metrics diff {previous.commit}" in markdown


def test_changes_under_another_protocol_or_nan_are_not_called_better(tmp_path):
    commit_outputs(tmp_path, seed=0)
    write_outputs(tmp_path, seed=1)
    card = json.loads((tmp_path / "metrics/ddpm.protocol.json").read_text())
    card["num_samples"] = 500  # the ddpm's numbers now come from fewer samples
    (tmp_path / "metrics/ddpm.protocol.json").write_text(json.dumps(card))
    metrics = json.loads((tmp_path / "metrics/gan.json").read_text())
    metrics["evaluator"]["is_mean"] = float("nan")
    (tmp_path / "metrics/gan.json").write_text(json.dumps(metrics))
    previous = committed_at("HEAD", [*NAMES, REAL], tmp_path / "metrics")
    page, _ = render(tmp_path, previous)
    rows = Tables()
    rows.feed(page)
    found = {(row[0][0], row[1][0]): row[5][0] for row in rows.tables["change-table"][1:]}
    assert found[("metrics/ddpm.json", "evaluator.fid")] == "not comparable"
    assert found[("metrics/ddpm.json", "cost.train_seconds")] in ("better", "worse")
    assert found[("metrics/gan.json", "evaluator.is_mean")] == "invalid"
    assert found[("metrics/vae.json", "evaluator.fid")] in ("better", "worse")
    table = {row[0][0]: row for row in rows.tables["metric-table"][1:]}
    assert table["gan"][3] == ("", "")  # no IS shown, and never marked best


def test_no_previous_commit_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # not the checkout's
    write_outputs(tmp_path)
    assert committed_at("HEAD", list(NAMES), tmp_path / "metrics") is None
    page, _ = render(tmp_path, None)
    assert "No metrics at HEAD to compare with" in page


def test_headline_of_a_higher_is_better_metric_and_sparse_outputs(tmp_path):
    """IS: the highest wins; no classes (unlabelled folder) and no curves still render."""
    metrics = write_outputs(tmp_path)
    meta = json.loads((tmp_path / "data/prepared/meta.json").read_text())
    del meta["classes"]
    (tmp_path / "data/prepared/meta.json").write_text(json.dumps(meta))
    (tmp_path / "models/vae/losses.csv").unlink()
    page, markdown = render(tmp_path)
    best = max(NAMES, key=lambda n: metrics[n]["evaluator"]["is_mean"])
    value, floor = metrics[best]["evaluator"]["is_mean"], metrics[REAL]["evaluator"]["is_mean"]
    assert f"**IS**: best is **{best}** at {value:.2f}; real-data floor {floor:.2f}" in markdown
    assert f"gap {value - floor:+.2f}" in markdown
    assert "classes:" not in page and "vae_curves.png" not in markdown
    assert "gan_curves.png" in markdown


def test_missing_metrics_fail_in_one_line_and_keep_the_old_report(tmp_path):
    write_outputs(tmp_path)
    page, _ = render(tmp_path)
    (tmp_path / "metrics/vae.json").unlink()
    with pytest.raises(
        GenbenchError, match=r"metrics/vae.json is missing; run `dvc repro evaluate@vae`"
    ):
        render(tmp_path)
    assert (tmp_path / "reports/index.html").read_text() == page


def test_two_feature_extractors_are_never_mixed(tmp_path):
    write_outputs(tmp_path)
    card = json.loads((tmp_path / "metrics/ddpm.protocol.json").read_text())
    card["feature_extractor"]["name"] = "inception-v3-compat"
    (tmp_path / "metrics/ddpm.protocol.json").write_text(json.dumps(card))
    with pytest.raises(GenbenchError, match="ddpm: inception-v3-compat"):
        render(tmp_path)
    assert not (tmp_path / "reports").exists()
