"""The report rendered from fixture outputs: table, best marks, escaping, what it reads."""

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from genbench.core.errors import GenbenchError
from genbench.core.layout import REAL
from genbench.report.inputs import ReportInputs, load_inputs
from genbench.report.render import write_report
from tests.report_fixture import HOSTILE, NAMES, SEEDS, recompare, write_outputs

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


def load(root: Path) -> ReportInputs:
    """The report's inputs: compare.json and the figures, nothing else."""
    return load_inputs(root / "metrics/compare.json", root / "figures")


def render(root: Path, out="reports") -> tuple[str, str]:
    page = write_report(load(root), root / out)
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
    fid = comparison["families"]["ddpm"]["scores"]["fid"]
    seeds = [metrics[f"ddpm-{s}"]["scores"]["fid"] for s in SEEDS]
    assert fid["values"] == seeds and fid["n"] == 3
    text = f"{fid['mean']:.2f} ± {fid['half']:.2f}"
    assert f"| ddpm | {'**' + text + '**'} |" in markdown.replace(" |", " |")
    marked = {columns[i]: row[0][0] for row in body for i, c in enumerate(row) if c[1] == "best"}
    # planted: the DDPM's FID and KID are far lower; every other metric is a tie
    assert marked == {"FID": "ddpm", "KID": "ddpm"}
    assert f"{metrics[REAL]['scores']['fid']:.2f}" in [text for text, _ in body[-1]]


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

    write_outputs(tmp_path, data_folder=ODD_FOLDER)  # a data path HTML must not take as markup
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


def test_sparse_outputs_still_render(tmp_path):
    """No classes (unlabelled folder) and a family without curves still render."""
    write_outputs(tmp_path)
    meta = json.loads((tmp_path / "data/prepared/meta.json").read_text())
    del meta["classes"]
    (tmp_path / "data/prepared/meta.json").write_text(json.dumps(meta))
    (tmp_path / "models/vae-0/losses.csv").unlink()
    recompare(tmp_path)
    page, markdown = render(tmp_path)
    assert "classes:" not in page and "vae-0_curves.png" not in markdown
    assert "gan-0_curves.png" in markdown


def test_a_missing_or_broken_compare_json_fails_in_one_line_and_keeps_the_old_report(tmp_path):
    write_outputs(tmp_path)
    page, _ = render(tmp_path)
    compare = tmp_path / "metrics/compare.json"
    saved = compare.read_text()
    compare.unlink()
    with pytest.raises(GenbenchError, match=r"compare.json is missing; run `dvc repro compare`"):
        render(tmp_path)
    found = json.loads(saved)
    del found["runs"]["vae-1"]["card"]  # a compare.json from before the contract, or damaged
    compare.write_text(json.dumps(found))
    with pytest.raises(GenbenchError, match=r"compare.json: runs.vae-1.card: Field required"):
        render(tmp_path)
    assert (tmp_path / "reports/index.html").read_text() == page


def test_the_report_reads_nothing_but_compare_json_and_figures(tmp_path):
    """With models/, data/ and every metrics file but compare.json gone, the page is the same."""
    write_outputs(tmp_path)
    page, markdown = render(tmp_path)
    for folder in ("models", "data"):
        shutil.rmtree(tmp_path / folder)
    for path in (tmp_path / "metrics").rglob("*.json"):
        if path.name != "compare.json":
            path.unlink()
    assert render(tmp_path, out="again") == (page, markdown)


def test_missing_or_damaged_inputs_stop_compare_in_one_line(tmp_path):
    write_outputs(tmp_path)
    (tmp_path / "metrics/runs/vae-1.json").unlink()
    with pytest.raises(
        GenbenchError, match=r"runs/vae-1.json is missing or broken .*evaluate@vae-1"
    ):
        recompare(tmp_path)
    write_outputs(tmp_path)
    (tmp_path / "models/gan-0/config.json").write_text('{"family": "gan", "seed": 0}')
    with pytest.raises(
        GenbenchError,
        match=r"gan-0/config.json: params: Field required; run `dvc repro train@gan-0`",
    ):
        recompare(tmp_path)


def test_two_feature_extractors_are_never_mixed(tmp_path):
    write_outputs(tmp_path)
    card = json.loads((tmp_path / "metrics/runs/ddpm-2.protocol.json").read_text())
    card["feature_extractor"]["name"] = "inception-v3-compat"
    (tmp_path / "metrics/runs/ddpm-2.protocol.json").write_text(json.dumps(card))
    (tmp_path / "metrics/compare.json").unlink()
    with pytest.raises(GenbenchError, match="different feature spaces .*inception-v3-compat"):
        recompare(tmp_path)
    assert not (tmp_path / "metrics/compare.json").exists()
