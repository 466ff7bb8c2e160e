"""The report opened in a real headless Chromium: every image loads, the table lists the models.

CI installs Debian's chromium and sets GENBENCH_REQUIRE_BROWSER=1, so there this test cannot
skip. Elsewhere it skips, saying why, when no Chromium is found.
"""

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from genbench.report.inputs import load_inputs
from genbench.report.render import write_report
from tests.conftest import ROOT
from tests.report_fixture import NAMES, write_outputs

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
    inputs = load_inputs(
        list(NAMES),
        tmp_path / "metrics",
        tmp_path / "models",
        tmp_path / "figures",
        tmp_path / "data/prepared",
        None,
    )
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
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert len(loaded) >= 8 and all(loaded), loaded  # 4 grids, reconstructions, 3 curves
    assert compute is True
    assert models[:3] == list(NAMES) and models[3] == "real data"
    assert blocked == []
    width, height = Image.open(shot).size
    assert width == 1280 and height > 900  # the whole page, longer than one screen
