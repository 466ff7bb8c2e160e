"""The numbers of the report: the metric table (best per column), the headline against the
real-data floor, and the change of every metric since the previous commit.
"""

import math
from dataclasses import dataclass
from typing import Any

from genbench.files import flatten
from genbench.report.inputs import ReportInputs, Result

LOWER, HIGHER, NEAR_REAL = "lower", "higher", "near_real"  # what "better" means for a metric
EXTRACTOR = "@extractor"  # stands for the metrics group named after the feature extractor


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    group: str  # metrics group: EXTRACTOR, "ssim" or "cost"
    metric: str
    better: str
    digits: int = 3
    std: str | None = None  # the metric of the same group holding its standard deviation
    unit: str = ""

    @property
    def quality(self) -> bool:
        """A sample-quality column: the real-data floor has a value for it."""
        return self.group != "cost"


COLUMNS = (
    Column("fid", "FID", EXTRACTOR, "fid", LOWER, 2),
    Column("kid", "KID", EXTRACTOR, "kid_mean", LOWER, 3, std="kid_std"),
    Column("is", "IS", EXTRACTOR, "is_mean", HIGHER, 2, std="is_std"),
    Column("precision", "precision", EXTRACTOR, "precision", HIGHER),
    Column("recall", "recall", EXTRACTOR, "recall", HIGHER),
    Column("reconstruction", "recon. SSIM", "ssim", "reconstruction", HIGHER),
    Column("diversity", "diversity SSIM", "ssim", "diversity", NEAR_REAL),
    Column("parameters", "parameters", "cost", "parameters", LOWER, 0),
    Column("train_seconds", "train time", "cost", "train_seconds", LOWER, 1, unit=" s"),
    Column("train_ips", "train img/s", "cost", "train_images_per_second", HIGHER, 0),
    Column("sampling", "sampling ms/img", "cost", "sampling_ms_per_image", LOWER, 3),
)


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def metric(result: Result, column: Column, extractor: str) -> float | None:
    """A column's value for one result; None when missing or not a finite number (NaN)."""
    group = extractor if column.group == EXTRACTOR else column.group
    value = result.metrics.get(group, {}).get(column.metric)
    return float(value) if finite(value) else None


def fmt(value: float | None, digits: int, unit: str = "") -> str:
    if value is None:
        return ""
    return f"{value:,.0f}{unit}" if digits == 0 else f"{value:.{digits}f}{unit}"


def cell_text(result: Result, column: Column, extractor: str) -> str:
    value = metric(result, column, extractor)
    if value is None:
        return ""
    if column.metric == "parameters":
        generator = result.metrics.get("cost", {}).get("generator_parameters")
        sampled = f" (G {count(generator)})" if generator not in (None, value) else ""
        return count(value) + sampled  # the GAN's discriminator is not sampled
    text = fmt(value, column.digits, column.unit)
    if column.std:
        std = result.metrics.get(extractor, {}).get(column.std)
        text += f" ± {fmt(std, column.digits)}" if finite(std) else ""
    if column.better == NEAR_REAL:
        text += f" (real {fmt(real_diversity(result), column.digits)})"
    return text


def count(value: float) -> str:
    """A parameter count, short: 1.11M, 398k, 950."""
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    return f"{value / 1e3:.0f}k" if value >= 1e4 else f"{value:.0f}"


def real_diversity(result: Result) -> float | None:
    """Diversity SSIM of the real test images, measured beside each model's."""
    return result.metrics.get("ssim", {}).get("diversity_real")


def score(value: float, column: Column, result: Result) -> float:
    """Smaller is better: the quantity compared to find each column's best."""
    if column.better == LOWER:
        return value
    if column.better == HIGHER:
        return -value
    return abs(value - (real_diversity(result) or 0.0))


def best_of(inputs: ReportInputs, column: Column) -> tuple[Result, float] | None:
    """The model that does best on a column and its value (ties: the first listed)."""
    found = [
        (r, v) for r in inputs.models if (v := metric(r, column, inputs.extractor)) is not None
    ]
    return min(found, key=lambda rv: score(rv[1], column, rv[0])) if found else None


def table(inputs: ReportInputs) -> dict[str, Any]:
    """Rows of cells for every model and the real-data floor; the best model per column marked
    (only where at least two models have a value: one alone is not "best").
    """
    extractor, best = inputs.extractor, {}
    for column in COLUMNS:
        have = sum(metric(r, column, extractor) is not None for r in inputs.models)
        best[column.key] = best_of(inputs, column)[0].name if have > 1 else None
    rows = [
        {
            "name": r.name,
            "cells": [Cell(cell_text(r, c, extractor), best[c.key] == r.name) for c in COLUMNS],
        }
        for r in inputs.models
    ]
    floor = [Cell(cell_text(inputs.real, c, extractor) if c.quality else "") for c in COLUMNS]
    return {"columns": COLUMNS, "rows": rows, "floor": {"name": "real data", "cells": floor}}


def headline(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Per quality metric: the best model, its value, the real-data floor and the gap to it."""
    lines = []
    for column in COLUMNS:
        best = best_of(inputs, column) if column.quality else None
        if best is None:
            continue
        result, value = best
        floor = metric(inputs.real, column, inputs.extractor)
        if column.better == NEAR_REAL:
            floor = real_diversity(result)
        gap = None if floor is None else value - floor
        lines.append(
            {
                "metric": column.label,
                "model": result.name,
                "value": fmt(value, column.digits),
                "floor": fmt(floor, column.digits),
                "gap": "" if gap is None else f"{gap:+.{column.digits}f}",
            }
        )
    return lines


def numbers(values: dict[str, Any]) -> dict[str, float]:
    """The numeric leaves of a metrics file, flattened (NaN kept: it is reported as invalid)."""
    flat = flatten(values)
    numeric = {k: v for k, v in flat.items() if isinstance(v, int | float)}
    return {k: float(v) for k, v in numeric.items() if not isinstance(v, bool)}


DIRECTIONS = {c.metric: c.better for c in COLUMNS}


def verdict(key: str, old: float, new: float, current: dict, previous: dict) -> str:
    """better / worse / changed (no direction) / same, for one metric key like `evaluator.fid`."""
    if math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12):
        return "same"
    direction = DIRECTIONS.get(key.rsplit(".", 1)[-1])
    if direction == NEAR_REAL and key == "ssim.diversity":
        old_gap = abs(old - previous.get("ssim.diversity_real", old))
        new_gap = abs(new - current.get("ssim.diversity_real", new))
        return "better" if new_gap < old_gap else "worse" if new_gap > old_gap else "changed"
    if direction in (LOWER, HIGHER):
        return "better" if (new < old) == (direction == LOWER) else "worse"
    return "changed"


# What must match for two evaluations' quality numbers to be compared at all.
PROTOCOL = ("feature_extractor", "reference", "num_samples", "sampler")


def comparable(card: dict, old_card: dict | None) -> bool:
    """Same extractor weights, reference set, sample count and sampler (no card: assume so)."""
    return old_card is None or all(card.get(key) == old_card.get(key) for key in PROTOCOL)


def change_row(name: str, key: str, old: float | None, new: float | None, mark: str) -> dict:
    def text(value: float | None) -> str:
        return "" if value is None else f"{value:,.5g}"

    both = finite(old) and finite(new)
    return {
        "path": f"metrics/{name}.json",
        "metric": key,
        "old": text(old),
        "new": text(new),
        "change": f"{new - old:+,.5g}" if both else "",
        "verdict": mark,
    }


def changes(inputs: ReportInputs) -> list[dict[str, Any]]:
    """What `dvc metrics diff <rev>` shows, with better/worse per metric; changed rows only.

    Quality numbers made under another protocol (extractor weights, reference set, sample
    count, sampler) are marked "not comparable"; NaN or inf on either side "invalid".
    """
    if inputs.previous is None:
        return []
    rows = []
    for result in [*inputs.models, inputs.real]:
        current = numbers(result.metrics)
        previous = numbers(inputs.previous.metrics.get(result.name) or {})
        same = comparable(result.card, inputs.previous.cards.get(result.name))
        for key in sorted(set(current) | set(previous)):
            old, new = previous.get(key), current.get(key)
            if old is None or new is None:
                mark = "new" if old is None else "removed"
            elif not (finite(old) and finite(new)):
                mark = "same" if repr(old) == repr(new) else "invalid"  # NaN != NaN
            elif not same and not key.startswith("cost."):
                mark = "not comparable"
            else:
                mark = verdict(key, old, new, current, previous)
            if mark != "same":
                rows.append(change_row(result.name, key, old, new, mark))
    return rows
