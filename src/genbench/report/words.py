"""The words of a verdict, from compare.json's ranking (compare/verdict.py): one row per pair
of families with its effect size, probability of improvement, tests, what the statistics show
in words, and how many seeds would separate a pair that is not separated.

The words say exactly what the tests show: "separated" when Welch's test (Holm) is below alpha,
"equivalent within ±m" only when TOST shows it, otherwise "not separated with n seeds".
"""

from typing import Any

from genbench.core.metric_registry import Metric

MAX_SEEDS = 100  # compare/stats.py searches no further


def effect_text(pair: dict, column: Metric) -> str:
    """'ratio 0.055 [0.031, 0.098]' or 'difference -0.12 [-0.20, -0.04]' (better vs worse)."""
    found = pair["effect"]
    shape = "{:.3g}" if found["kind"] == "ratio" else f"{{:.{max(column.digits, 2)}f}}"
    numbers = [
        "" if found[k] is None else shape.format(found[k])
        for k in ("estimate", "ci_low", "ci_high")
    ]
    interval = f" [{numbers[1]}, {numbers[2]}]" if numbers[1] else ""
    return f"{found['kind']} {numbers[0]}{interval}"


def status_text(pair: dict, n: int) -> str:
    """What the statistics show about a pair, in the report's words."""
    better, worse = pair["better"], pair["worse"]
    if pair["separated"]:
        return f"{better} ≻ {worse}: separated"
    if pair["equivalence"]["equivalent"]:
        margin = round(100 * pair["equivalence"]["margin"])
        return f"{better} ≈ {worse}: equivalent within ±{margin}% (TOST)"
    return f"{better}, {worse}: not separated with {n} seeds"


def needed_text(pair: dict, n: int) -> str:
    """'about 7 seeds would separate them at the spread observed' for a pair not separated."""
    if pair["separated"] or pair["equivalence"]["equivalent"]:
        return ""
    needed = pair["seeds_needed"]
    if needed is None:
        return f"more than {MAX_SEEDS} seeds per family at the spread observed"
    if needed <= n:
        return f"{n} seeds would usually do at this spread; this draw did not"
    return f"about {needed} seeds per family would separate them at the spread observed"


def p_text(value: float | None) -> str:
    return "" if value is None else f"{value:.2g}"


def pair_rows(found: dict, column: Metric, n: int) -> list[dict[str, Any]]:
    """One row per pair, the better family first: effect, P(better beats worse), Holm p, TOST
    p, the words, the seeds needed, and a borderline mark."""
    rows = []
    alpha = found["alpha"]
    for pair in found["pairs"].values():
        borderline = ""
        if pair["borderline"]:
            borderline = (
                f"borderline: Holm p {p_text(pair['p_holm'])} is within a factor of 2 of "
                f"α = {alpha:.2g}; it can flip with another seed or CPU type"
            )
        rows.append(
            {
                "pair": f"{pair['better']} vs {pair['worse']}",
                "effect": effect_text(pair, column),
                "improvement": f"{pair['probability_of_improvement']:.2f}",
                "p_holm": p_text(pair["p_holm"]),
                "tost_p_holm": p_text(pair["equivalence"]["p_holm"]),
                "status": status_text(pair, n),
                "needed": needed_text(pair, n),
                "borderline": borderline,
            }
        )
    return rows
