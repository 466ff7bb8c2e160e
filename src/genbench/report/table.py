"""The numbers of the report: the metric table (each family's mean ± confidence interval over
its seeds; the best marked only where the compare stage separated it from every other), the
ranking per metric, and the change of every metric since the previous commit. Columns,
directions and digits come from the metric registry (genbench.core.metric_registry).
"""

import math
from dataclasses import dataclass
from typing import Any

from genbench.core.layout import COMPARABLE
from genbench.core.metric_registry import (
    EXTRACTOR,
    HIGHER,
    LOWER,
    METRICS,
    NEAR_REAL,
    TIMINGS,
    VERDICT_METRICS,
    Metric,
    better_direction,
    by_key,
)
from genbench.report.inputs import ReportInputs, metrics_file
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


def path_of(column: Column, extractor: str) -> list[str]:
    """Where a column's value sits in a metrics file (memorisation is kept per extractor)."""
    if column.group == EXTRACTOR:
        return [extractor, column.metric]
    if column.group == "memorisation":
        return ["memorisation", extractor, column.metric]
    return [column.group, column.metric]


def lookup(values: dict, path: list[str]) -> Any:
    for key in path:
        values = values.get(key, {}) if isinstance(values, dict) else {}
    return values


def aggregate(inputs: ReportInputs, family: str, column: Column) -> dict | None:
    """The compare stage's summary (n, mean, half, ...) of a family's column, or None."""
    stats = inputs.comparison["families"].get(family, {})
    found = lookup(stats, path_of(column, inputs.extractor))
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
        value = lookup(metrics, path_of(column, inputs.extractor))
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
    columns = [
        c
        for c in VERDICT_METRICS
        if all(
            any(lookup(families.get(f, {}), path_of(c, s)) for f in inputs.families) for s in spaces
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
            cells = [text(lookup(families.get(family, {}), path_of(c, space))) for c in columns]
            rows.append({"space": space, "name": family, "cells": cells})
        real = [lookup(inputs.real.metrics, path_of(c, space)) for c in columns]
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
        budget = (runs[0].config or {}).get("budget", {}) if runs else {}
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


def verdict(key: str, old: float, new: float, current: dict, previous: dict) -> str:
    """better / worse / changed (no direction), for one metric key like `evaluator.fid` whose
    value moved."""
    direction = better_direction(key.rsplit(".", 1)[-1])
    if direction == NEAR_REAL and key == "ssim.diversity":
        old_gap = abs(old - previous.get("ssim.diversity_real", old))
        new_gap = abs(new - current.get("ssim.diversity_real", new))
        return "better" if new_gap < old_gap else "worse" if new_gap > old_gap else "changed"
    if direction in (LOWER, HIGHER):
        return "better" if (new < old) == (direction == LOWER) else "worse"
    return "changed"


PROTOCOL_ID = "protocol.id"  # the digest of the card's COMPARABLE part, in every metrics file


def comparable(current: dict, previous: dict, card: dict, old_card: dict | None) -> bool:
    """Same extractor weights, reference set, sample count, sampler and metric rules: by the
    digest both metrics files carry, else (files from before it) by the committed card; with
    neither, assume so."""
    if PROTOCOL_ID in current and PROTOCOL_ID in previous:
        return current[PROTOCOL_ID] == previous[PROTOCOL_ID]
    return old_card is None or all(card.get(key) == old_card.get(key) for key in COMPARABLE)


def change_row(name: str, key: str, entry: dict, mark: str) -> dict:
    """One row of the change table from DVC's diff entry for a key."""

    def text(value: Any) -> str:
        return f"{value:,.5g}" if _number(value) else ""

    both = finite(entry.get("old")) and finite(entry.get("new"))
    return {
        "path": f"metrics/{metrics_file(name)}",
        "metric": key,
        "old": text(entry.get("old")),
        "new": text(entry.get("new")),
        "change": f"{entry['diff']:+,.5g}" if both and "diff" in entry else "",
        "verdict": mark,
    }


def _side(diff: dict[str, dict], which: str) -> dict[str, float]:
    """One side ("old" or "new") of DVC's diff of a metrics file: its numeric keys."""
    return {k: float(e[which]) for k, e in diff.items() if _number(e.get(which))}


def changes(inputs: ReportInputs) -> list[dict[str, Any]]:
    """`dvc metrics diff <rev>` (DVC computes it; the stage passes it in), with better/worse per
    metric; changed rows only.

    Quality numbers made under another protocol (extractor weights, reference set, sample
    count, sampler) are marked "not comparable"; NaN or inf on either side "invalid".
    """
    if inputs.previous is None:
        return []
    rows = []
    for result in [*inputs.models, inputs.real]:
        diff = inputs.previous.diff.get(result.name, {})
        previous, current = _side(diff, "old"), _side(diff, "new")
        old_card = inputs.previous.cards.get(result.name)
        same = comparable(current, previous, result.card, old_card)
        apart = []  # quality numbers made under another protocol: one row says why
        for key in sorted((set(current) | set(previous)) - {PROTOCOL_ID}):
            old, new = previous.get(key), current.get(key)
            if old is None or new is None:
                mark = "new" if old is None else "removed"
            elif not (finite(old) and finite(new)):
                mark = "same" if repr(old) == repr(new) else "invalid"  # NaN != NaN
            elif math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12):
                mark = "same"
            elif not same and not key.startswith("cost."):
                apart.append(key)
                continue
            elif key.rsplit(".", 1)[-1] in TIMINGS:
                mark = "timing"
            else:
                mark = verdict(key, old, new, current, previous)
            if mark != "same":
                rows.append(change_row(result.name, key, diff[key], mark))
        if apart:
            why = protocol_change(result.card, old_card)
            rows.append(
                {
                    "path": f"metrics/{metrics_file(result.name)}",
                    "metric": f"{len(apart)} quality numbers",
                    "old": "",
                    "new": "",
                    "change": f"protocol changed: {why}",
                    "verdict": "not comparable",
                }
            )
    return rows


def protocol_change(card: dict, old_card: dict | None) -> str:
    """Which of the protocol card's comparable parts changed (`kid, prdc`), or why that
    cannot be told (the previous card is not in the commit's cache)."""
    if old_card is None:
        return "the protocol id differs (the previous card is not at hand to say how)"
    changed = [key for key in COMPARABLE if card.get(key) != old_card.get(key)]
    return ", ".join(changed) if changed else "the protocol id differs"
