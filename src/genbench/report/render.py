"""Render the report to `reports/`: index.html (self-contained: images embedded, no network)
and report.md with the same content, its images beside it for a repository browser.
"""

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from genbench.core.files import atomic_dir, flatten
from genbench.core.layout import (
    COMPUTE_FIGURE,
    HTML,
    IMAGES,
    MARKDOWN,
    NEAREST_FIGURE,
    RECONSTRUCTIONS_FIGURE,
    SEEDS_FIGURE,
)
from genbench.report.compute import curve_panels, leader_changes, warnings
from genbench.report.figures import compute_png, curves_png, data_uri, seeds_png
from genbench.report.inputs import ReportInputs, Shown
from genbench.report.table import (
    COLUMNS,
    aggregate,
    budget_rows,
    headline,
    real_value,
    space_table,
    table,
)

TEMPLATES = Path(__file__).parent / "templates"
EXTRACTOR_NOTES = {
    "evaluator": "An offline classifier trained on this dataset's own labels: these FIDs rank the"
    " models here; they are not the Inception FIDs papers report.",
    "inception-v3-compat": "Inception v3 as in the FID paper (torch-fidelity's"
    " TensorFlow-compatible port): comparable with published FIDs only under the same protocol"
    " (the `paper` preset: 50,000 samples against the training set's statistics).",
}


# Inline Markdown and HTML syntax (values are never at a line start: no #, +, - needed)
MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()<>|~&])")


def markdown_text(value: Any) -> str:
    """Every value printed into report.md: Markdown and HTML syntax backslash-escaped, so text
    from data or params renders as itself (no tags, links or emphasis), on one line, safe in a
    table cell. Link targets made by `markdown_url` pass as they are.
    """
    if isinstance(value, Markup):
        return str(value)
    text = "" if value is None else str(value)
    return MARKDOWN_SYNTAX.sub(r"\\\1", " ".join(text.splitlines()))


def markdown_url(url: str) -> Markup:
    """A link target for report.md: percent-encoded and in <...>, so no character can end it."""
    return Markup(f"<{quote(str(url), safe=':/#?=&%')}>")


def environments() -> tuple[Environment, Environment]:
    """(HTML with autoescape on, Markdown with every value escaped by `markdown_text`)."""
    loader = FileSystemLoader(TEMPLATES)
    page = Environment(loader=loader, autoescape=True, undefined=StrictUndefined)
    markdown = Environment(
        loader=loader, autoescape=False, undefined=StrictUndefined, finalize=markdown_text
    )
    markdown.filters["url"] = markdown_url
    return page, markdown


def image(images: dict[str, bytes], file: str, png: bytes, caption: str) -> dict[str, str]:
    """Register a PNG under images/<file>; the templates get both its file and data URI."""
    images[file] = png
    return {"file": f"{IMAGES}/{file}", "uri": data_uri(png), "caption": caption}


def caption(result: Shown, file: str, real: bool) -> str:
    """What a figure shows: which images, and for the DDPM which sampler drew them."""
    if file == RECONSTRUCTIONS_FIGURE:
        return f"{result.name}: test images (top) and their reconstructions (bottom)"
    if file == NEAREST_FIGURE:
        return f"{result.name}: the samples closest to a training image (top), above that image"
    if real:
        return "real data: train images, scored as the real-data reference"
    sampler = result.card.get("sampler")
    if not sampler:
        return f"{result.name}: the first of {result.card.get('num_samples', '?')} scored samples"
    how = f"{sampler['sampler']} sampler"
    if sampler["sampler"] == "ddim":
        how += f", {sampler['steps']} steps, eta {sampler['eta']}"
    return f"{result.name}: {how}; the first scored samples"


def figures(inputs: ReportInputs, images: dict[str, bytes]) -> dict[str, list]:
    """Quality against compute, the seed figure, then sample grids (each family's first seed
    beside real images), reconstructions and training curves (first seed), as image entries."""
    shown: dict[str, list] = {
        "compute": [],
        "seeds": [],
        "grids": [],
        "reconstructions": [],
        "curves": [],
    }
    curve = inputs.comparison.get("curve")
    if curve and (png := compute_png(curve_panels(inputs), curve["samples"])):
        text = (
            f"FID and KID against training compute: each family's mean over {len(inputs.seeds)}"
            f" seeds at every snapshot, its {round(100 * inputs.comparison['confidence'])}% "
            f"interval, its best snapshot (star) and real data (dashed), each scored on "
            f"{curve['samples']} samples"
        )
        shown["compute"].append(image(images, COMPUTE_FIGURE, png, text))
    if png := seeds_png(seed_panels(inputs)):
        seeds = len(inputs.seeds)
        text = f"every seed's value per family, with the mean and its interval ({seeds} seeds)"
        shown["seeds"].append(image(images, SEEDS_FIGURE, png, text))
    first = [runs[0] for f in inputs.families if (runs := inputs.runs_of(f))]
    for result in [*first, inputs.real]:
        for file, path in result.figures.items():
            text = caption(result, file, result is inputs.real)
            entry = image(images, f"{result.name}_{file}", path.read_bytes(), text)
            shown["reconstructions" if file == RECONSTRUCTIONS_FIGURE else "grids"].append(entry)
        columns = {column.name: column.values for column in result.result.losses}
        if png := curves_png(columns, result.name):
            text = f"{result.name}: training curves"
            shown["curves"].append(image(images, f"{result.name}_curves.png", png, text))
    return shown


def seed_panels(inputs: ReportInputs) -> list[dict]:
    """The seed figure's data: per metric with a verdict, each family's seeds and interval."""
    panels = []
    for column in COLUMNS:
        if column.metric not in inputs.comparison["verdicts"] or not column.verdict:
            continue
        families = {f: found for f in inputs.families if (found := aggregate(inputs, f, column))}
        floor = real_value(inputs, column)
        panels.append({"title": column.label, "floor": floor, "families": families})
    return panels


def diagnostics(inputs: ReportInputs) -> list[dict[str, str]]:
    """Quality metrics shown in the table but not ranked, with the reason."""
    found = inputs.comparison.get("diagnostics") or {}
    return [{"metric": c.label, "why": found[c.metric]} for c in COLUMNS if c.metric in found]


def model_details(shown: Shown) -> dict[str, Any]:
    """Params, protocol card and MLflow run of one model, as flat key/value lists."""
    run, config = shown.result.run, shown.result.config
    uri, link = run.tracking_uri if run else "", None
    if run and uri.startswith(("http://", "https://")):
        link = f"{uri.rstrip('/')}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
    return {
        "name": shown.name,
        "family": config.family if config else "",
        "params": as_text(shown.raw.get("config", {}).get("params", {})),
        "card": as_text(shown.card),
        "run_id": run.run_id if run else "",
        "experiment_id": run.experiment_id if run else "",
        "tracking_uri": uri,
        "link": link,
    }


def as_text(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Nested mapping -> sorted ("a.b", "value") pairs, every leaf as text (JSON for non-text)."""
    flat = flatten(values)
    return sorted((k, v if isinstance(v, str) else json.dumps(v)) for k, v in flat.items())


def context(inputs: ReportInputs) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Everything the two templates print, and the PNGs they show."""
    images: dict[str, bytes] = {}
    extractor_card = inputs.real.card.get("feature_extractor", {})
    return {
        "models": inputs.families,
        "seeds": inputs.seeds,
        "confidence": round(100 * inputs.comparison["confidence"]),
        "test": inputs.comparison.get("test", ""),
        "budget": budget_rows(inputs),
        "extractor": inputs.extractor,
        "extractor_note": EXTRACTOR_NOTES.get(inputs.extractor, ""),
        "extractor_sha256": extractor_card.get("weights_sha256", ""),
        "reference": inputs.real.card.get("reference", {}),
        "num_samples": inputs.real.card.get("num_samples", ""),
        "dataset": inputs.dataset,
        "headline": headline(inputs),
        "margin": round(100 * inputs.comparison.get("equivalence_margin", 0.1)),
        "diagnostics": diagnostics(inputs),
        "sequential": inputs.comparison.get("sequential"),
        "curve_reason": (inputs.comparison.get("curve") or {}).get("verdict_reason", ""),
        "along_budget": leader_changes(inputs),
        "warnings": warnings(inputs),
        "table": table(inputs),
        "spaces": space_table(inputs),
        "figures": figures(inputs, images),
        "details": [model_details(r) for r in inputs.models],
    }, images


def render(inputs: ReportInputs) -> tuple[str, str, dict[str, bytes]]:
    """(index.html, report.md, {file: png}) of the report, all in memory."""
    values, images = context(inputs)
    page, markdown = environments()
    return (
        page.get_template("report.html.j2").render(**values),
        markdown.get_template("report.md.j2").render(**values),
        images,
    )


def write_report(inputs: ReportInputs, out: Path) -> Path:
    """Render everything first, then replace `out` at once: a failure leaves the old report."""
    page, markdown, images = render(inputs)
    with atomic_dir(out) as tmp:
        (tmp / HTML).write_text(page, encoding="utf-8")
        (tmp / MARKDOWN).write_text(markdown, encoding="utf-8")
        (tmp / IMAGES).mkdir()
        for file, png in images.items():
            (tmp / IMAGES / file).write_bytes(png)
    return out / HTML
