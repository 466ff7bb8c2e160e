"""The numbers of the report: the metric table (each family's mean ± confidence interval over
its seeds; the best marked only where the compare stage separated it from every other), the
and the ranking per metric. Columns, directions and digits come from the metric registry
(genbench.core.metric_registry). What changed since a commit is `genbench diff` (diff.py).
"""

import math
from dataclasses import dataclass
from typing import Any

from genbench.core.metric_registry import (
    METRICS,
    NEAR_REAL,
    VERDICT_METRICS,
    Metric,
    by_key,
)
from genbench.report.inputs import ReportInputs
from genbench.report.words import pair_rows

# The report's columns are the metric registry's metrics, in its order.
Column = Metric
COLUMNS = METRICS
TRAIN_SECONDS = by_key("train_seconds")


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite(value: Any) -> bool:
    return _number(value) and math.isfinite(value)


def fmt(value: float | None, digits: int, unit: str = "") -> str:
    if value is None:
        return ""
    return f"{value:,.0f}{unit}" if digits == 0 else f"{value:.{digits}f}{unit}"


def count(value: float) -> str:
    """A count, short, one style for every size: 3.00T, 3.06G, 442.50M, 62.7k, 950."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M")):
        if value >= scale:
            return f"{value / scale:.2f}{prefix}"
    return f"{value / 1e3:.1f}k" if value >= 1e4 else f"{value:.0f}"


def path_of(column: Column, space: str | None = None) -> list[str]:
    """Where a column's value sits in a metrics file (and under compare.json's
    families.<family>), in a feature space (None: the primary)."""
    return column.key_in(space).split(".")


def lookup(values: dict, path: list[str]) -> Any:
    for key in path:
        values = values.get(key, {}) if isinstance(values, dict) else {}
    return values


def aggregate(inputs: ReportInputs, family: str, column: Column) -> dict | None:
    """The compare stage's summary (n, mean, half, ...) of a family's column, or None."""
    stats = inputs.comparison["families"].get(family, {})
    found = lookup(stats, path_of(column))
    return found if isinstance(found, dict) and finite(found.get("mean")) else None


def mean_text(found: dict, column: Column) -> str:
    """`9.48 ± 0.80` (mean ± half-width of the t interval), or the mean alone for one seed."""
    if column.digits == 0:
        return count(found["mean"])
    text = fmt(found["mean"], column.digits, column.unit)
    if finite(found.get("half")):
        text += f" ± {fmt(found['half'], column.digits)}"
    return text


def real_value(inputs: ReportInputs, column: Column) -> float | None:
    """The real-data floor's value of a quality column (diversity: the real test images')."""
    metrics = inputs.real.metrics
    if column.better == NEAR_REAL:
        value = metrics.get("ssim", {}).get("diversity_real")
    else:
        value = lookup(metrics, path_of(column))
    return float(value) if finite(value) else None


def verdict_of(inputs: ReportInputs, column: Column) -> dict | None:
    """The compare stage's ranking of a column (None: not a verdict metric, or not ranked)."""
    return inputs.comparison["verdicts"].get(column.metric) if column.verdict else None


def best_family(inputs: ReportInputs, column: Column) -> str | None:
    """The family the compare stage separated from every other on a column, ahead of them."""
    return (verdict_of(inputs, column) or {}).get("best")


def space_table(inputs: ReportInputs) -> dict[str, Any] | None:
    """Every feature space's numbers (compare.json's families.<family>.<space>): one row per
    space and family, a column per verdict metric the spaces share, mean ± half-width at three
    significant digits (the spaces' scales differ by orders of magnitude); the real data's
    value per space; each space's ranking per metric. None with one space."""
    spaces = inputs.comparison.get("feature_spaces") or [inputs.extractor]
    if len(spaces) < 2:
        return None
    families = inputs.comparison["families"]
    where = {s: None if i == 0 else s for i, s in enumerate(spaces)}  # None: the primary's keys
    columns = [
        c
        for c in VERDICT_METRICS
        if all(
            any(lookup(families.get(f, {}), path_of(c, where[s])) for f in inputs.families)
            for s in spaces
        )
    ]

    def text(found: Any) -> str:
        if not isinstance(found, dict) or not finite(found.get("mean")):
            return ""
        half = f" ± {found['half']:.3g}" if finite(found.get("half")) else ""
        return f"{found['mean']:.3g}{half}"

    rows = []
    for space in spaces:
        for family in inputs.families:
            stats = families.get(family, {})
            cells = [text(lookup(stats, path_of(c, where[space]))) for c in columns]
            rows.append({"space": space, "name": family, "cells": cells})
        real = [lookup(inputs.real.metrics, path_of(c, where[space])) for c in columns]
        rows.append(
            {
                "space": space,
                "name": "real data",
                "cells": [f"{v:.3g}" if finite(v) else "" for v in real],
            }
        )
    by_space = {spaces[0]: inputs.comparison["verdicts"]}
    by_space |= {s: v["verdicts"] for s, v in (inputs.comparison.get("spaces") or {}).items()}
    rankings = [
        {
            "metric": c.label,
            "by_space": [
                (by_space.get(s) or {}).get(c.metric, {}).get("ranking", "") for s in spaces
            ],
        }
        for c in columns
    ]
    return {"spaces": spaces, "columns": columns, "rows": rows, "rankings": rankings}


def table(inputs: ReportInputs) -> dict[str, Any]:
    """One row per family (mean ± CI over its seeds) and the real-data floor; a cell is marked
    best only where the compare stage found that family significantly better than all others.
    """
    rows = []
    for family in inputs.families:
        cells = []
        for column in COLUMNS:
            found = aggregate(inputs, family, column)
            text = mean_text(found, column) if found else ""
            cells.append(Cell(text, best_family(inputs, column) == family and bool(text)))
        rows.append({"name": family, "cells": cells})
    on_floor = [c.quality and c.group != "memorisation" for c in COLUMNS]  # real: no copy rate
    floor = [
        Cell(fmt(real_value(inputs, c), c.digits) if shown else "")
        for c, shown in zip(COLUMNS, on_floor, strict=True)
    ]
    return {"columns": COLUMNS, "rows": rows, "floor": {"name": "real data", "cells": floor}}


def headline(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Per verdict metric: the ranking in ordered groups, each family's mean ± interval with its
    group letters, one sentence per pair, and the borderline mark (report/words.py)."""
    comparison, lines = inputs.comparison, []
    level, n = round(100 * comparison["confidence"]), comparison["n"]
    for column in COLUMNS:
        found = verdict_of(inputs, column)
        if not found:
            continue
        values = {f: aggregate(inputs, f, column) for f in found["order"]}
        shown = " · ".join(
            f"{f} {mean_text(v, column)} ({found['letters'][f]})" for f, v in values.items() if v
        )
        agreement = (comparison.get("agreement") or {}).get(column.metric)
        ranking = found["ranking"] if n >= 2 else "no verdict: one seed gives no interval (set "
        ranking = ranking if n >= 2 else ranking + "compare.seeds to 3 or more)"
        lines.append(
            {
                "metric": column.label,
                "best": found["best"],
                "ranking": ranking,
                "borderline": bool(found["borderline"]),
                "families": f"{shown} ({level}% CI, {n} seeds; {found['scale']} scale)",
                "pairs": pair_rows(found, column, n) if n >= 2 else [],
                "floor": fmt(real_value(inputs, column), column.digits),
                "agreement": agreement["text"] if agreement and n >= 2 else "",
                "agreement_status": agreement["status"] if agreement else "",
            }
        )
    return lines


def _count_of(values: dict, key: str) -> str:
    return count(values[key]) if finite(values.get(key)) else ""


def budget_rows(inputs: ReportInputs) -> list[dict[str, str]]:
    """What each family's training got and cost, from its first run (the budget is the same
    for every seed): steps, images seen, FLOPs, and the mean wall seconds over seeds."""
    rows = []
    for family in inputs.families:
        runs = inputs.runs_of(family)
        config = runs[0].result.config if runs else None
        budget = config.budget.model_dump() if config else {}
        seconds = aggregate(inputs, family, TRAIN_SECONDS)
        rows.append(
            {
                "family": family,
                "unit": str(budget.get("budget", {}).get("unit", "")),
                "steps": _count_of(budget, "steps"),
                "images": _count_of(budget, "images_seen"),
                "flops_per_step": _count_of(budget, "flops_per_step"),
                "flops": _count_of(budget, "train_flops"),
                "seconds": mean_text(seconds, TRAIN_SECONDS) if seconds else "",
            }
        )
    return rows
