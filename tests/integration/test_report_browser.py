"""The report opened in a real headless Chromium: every image loads, the table lists the models.

CI installs Debian's chromium and sets GENBENCH_REQUIRE_BROWSER=1, so there this test cannot
skip. Elsewhere it skips, saying why, when no Chromium is found.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from genbench.report.inputs import load_inputs
from genbench.report.render import write_report
from tests.conftest import ROOT
from tests.report_fixture import NAMES, write_outputs

COMPARE = ROOT / "metrics/compare.json"  # the repository's, beside its reports/index.html

# Flags for a root user on a machine with a closed network: no sandbox, no GPU, no phoning home.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IMAGES_LOADED = "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
FIRST_COLUMN = "Array.from(document.querySelectorAll('#metric-table tbody tr td:first-child'))"
# the quality-against-compute figure: drawn, and the first figure of the page
# the verdict: each metric's ordered groups, the borderline marks, the pairs table's rows
RANKINGS = (
    "Array.from(document.querySelectorAll('#headline-list .ranking')).map(e => e.textContent)"
)
BORDERLINE = (
    "Array.from(document.querySelectorAll('#headline-list span.borderline'))"
    ".filter(e => e.offsetParent !== null).length"
)
PAIRS = (
    "Array.from(document.querySelectorAll('#pairs-table tbody tr'))"
    ".map(tr => Array.from(tr.cells).map(td => td.textContent.trim()))"
)
# the feature spaces: the agreement line under each metric, the spaces' table (space, model)
AGREEMENT = (
    "Array.from(document.querySelectorAll('#headline-list .agreement'))"
    ".filter(e => e.offsetParent !== null).map(e => [e.className, e.textContent])"
)
SPACE_ROWS = (
    "Array.from(document.querySelectorAll('#spaces-table tbody tr'))"
    ".map(tr => [tr.cells[0].textContent, tr.cells[1].textContent])"
)
# the metric table scrolled to its right end: the model column stays in view (sticky)
STICKY = """() => { const table = document.querySelector('#metric-table');
  const box = table.parentElement; box.scrollLeft = box.scrollWidth;
  const cell = table.querySelector('tbody td'); const at = cell.getBoundingClientRect();
  return {scrolled: box.scrollLeft, cell: at.left, box: box.getBoundingClientRect().left}; }"""
COMPUTE_FIGURE = (
    "(() => { const img = document.querySelector('#compute-figure img');"
    " return img && img.naturalWidth > 0 && img === document.images[0]; })()"
)


def chromium() -> str:
    found = os.environ.get("GENBENCH_CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if found:
        return found
    why = "no Chromium: install Debian's `chromium` package or set GENBENCH_CHROMIUM"
    if os.environ.get("GENBENCH_REQUIRE_BROWSER"):
        pytest.fail(why + " (GENBENCH_REQUIRE_BROWSER is set: CI must run this test)")
    pytest.skip(why)


def fixture_report(tmp_path: Path) -> Path:
    write_outputs(tmp_path)
    shutil.copy(tmp_path / "metrics/compare.json", tmp_path / "compare.json")
    inputs = load_inputs(tmp_path / "metrics/compare.json", tmp_path / "figures")
    return write_report(inputs, tmp_path / "reports")


@pytest.mark.parametrize("which", ["fixture outputs", "repository reports/index.html"])
def test_report_opens_in_chromium(tmp_path, which):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    page_file = (
        fixture_report(tmp_path) if which == "fixture outputs" else ROOT / "reports/index.html"
    )
    assert page_file.exists(), f"{page_file} is missing: run `make run` and commit reports/"
    shot = tmp_path / "report.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            blocked = []  # the page must not reach for anything outside its own file
            page.on("request", lambda r: r.url.startswith(("http", "ws")) and blocked.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")
            loaded = page.evaluate(IMAGES_LOADED)
            models = page.evaluate(f"{FIRST_COLUMN}.map(td => td.textContent.trim())")
            compute = page.evaluate(COMPUTE_FIGURE)
            rankings, borderline = page.evaluate(RANKINGS), page.evaluate(BORDERLINE)
            pairs = page.evaluate(PAIRS)
            agreement, space_rows = page.evaluate(AGREEMENT), page.evaluate(SPACE_ROWS)
            text = page.inner_text("body")
            page.set_viewport_size({"width": 900, "height": 900})  # the table must scroll
            sticky = page.evaluate(STICKY)
            page.set_viewport_size({"width": 1280, "height": 900})
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert len(loaded) >= 8 and all(loaded), loaded  # 4 grids, reconstructions, 3 curves
    assert compute is True
    assert models[:3] == list(NAMES) and models[3] == "real data"
    assert blocked == []
    # the verdict as compare.json has it: groups, borderline marks, every pair with its effect
    comparison = json.loads(
        (tmp_path / "compare.json" if which == "fixture outputs" else COMPARE).read_text()
    )
    verdicts = comparison["verdicts"].values()
    assert sorted(rankings) == sorted(v["ranking"] for v in verdicts)  # file: sorted keys
    assert borderline == sum(bool(v["borderline"]) for v in verdicts)
    assert len(pairs) == sum(len(v["pairs"]) for v in verdicts)
    assert all(row[2].startswith(("ratio ", "difference ")) for row in pairs)
    needed = [row[7] for row in pairs if "not separated" in row[6]]
    assert all("seeds" in text for text in needed)
    # every metric ranked in two or more spaces says, visibly, whether the spaces agree
    assert len(agreement) == len(comparison["agreement"]) >= 5  # FID, KID and PRDC (no IS)
    shown = sorted(classes.split()[1] for classes, _ in agreement)  # file: sorted keys
    assert shown == sorted(found["status"] for found in comparison["agreement"].values())
    assert sorted(text for _, text in agreement) == sorted(
        found["text"] for found in comparison["agreement"].values()
    )
    spaces = comparison["feature_spaces"]
    assert len(spaces) >= 2 and {space for space, _ in space_rows} == set(spaces)
    assert len(space_rows) == len(spaces) * (len(NAMES) + 1)  # each family and the real data
    if which == "fixture outputs":  # planted: a borderline density, pairs not separated
        assert borderline == 1 and needed
        assert "{" in " ".join(rankings) and "ddpm ≻ gan ≻ vae" in rankings
        # planted: random-cnn ranks FID the other way round
        fid = next(text for classes, text in agreement if "disagree" in classes)
        assert "disagree on ddpm vs gan (evaluator: ddpm ≻ gan; random-cnn: gan ≻ ddpm)" in fid
    assert sticky["scrolled"] > 0 and abs(sticky["cell"] - sticky["box"]) < 2, sticky
    assert "real-data floor" not in text and "real-data reference" in text
    # the page shows its inputs only: what changed since a commit is `genbench diff`'s
    assert "genbench diff" in text and "Change since HEAD (" not in text
    width, height = Image.open(shot).size
    assert width == 1280 and height > 900  # the whole page, longer than one screen


# `dvc plots show`'s page: every plot drawn (a canvas with pixels), and the curves of quality
# against compute in one colour per family (the template's range, first three colours)
PLOT_COLOURS = {"gan": (31, 119, 180), "vae": (214, 39, 40), "ddpm": (44, 160, 44)}
CANVASES = """() => Array.from(document.querySelectorAll('canvas')).map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const found = {};
  for (let i = 0; i < d.length; i += 4) { found[d[i] + ',' + d[i + 1] + ',' + d[i + 2]] = 1; }
  return {width: c.width, height: c.height, colours: Object.keys(found)};
})"""


def test_dvc_plots_show_draws_offline_in_one_colour_per_family(tiny_graph, tmp_path):
    """The project's DVC config names an HTML template with Vega inlined: `dvc plots show`
    draws without a network (DVC's own template loads Vega from a CDN)."""
    from playwright.sync_api import sync_playwright

    from tests.integration.conftest import project_env

    executable = chromium()
    out = tmp_path / "plots"
    subprocess.run(
        ["dvc", "plots", "show", "-o", str(out)],
        cwd=tiny_graph.root,
        env=project_env(tiny_graph.root),
        check=True,
        capture_output=True,
    )
    html = (out / "index.html").read_text()
    assert "cdn.jsdelivr" not in html and "vegaEmbed" in html
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            blocked = []
            page.on("request", lambda r: r.url.startswith(("http", "ws")) and blocked.append(r.url))
            page.goto((out / "index.html").as_uri(), wait_until="load")
            page.wait_for_function("document.querySelectorAll('canvas').length >= 6")
            canvases = page.evaluate(CANVASES)
        finally:
            browser.close()
    assert blocked == []
    assert len(canvases) >= 6 and all(c["width"] > 100 and c["height"] > 100 for c in canvases)
    drawn = [{tuple(map(int, c.split(","))) for c in found["colours"]} for found in canvases]
    families = [sum(colour in seen for colour in PLOT_COLOURS.values()) for seen in drawn]
    assert max(families) == 3, families  # the FID and KID curves: three colours
