"""Calibration and power of the verdict, by simulation: families drawn from known distributions
are ranked by compare/verdict.py, and the rates of each outcome counted. The calibration test
(tests/unit/test_verdict.py) and benchmarks/verdict_power.py (docs/statistics.md) use it. It sits at
the package's top level, not in compare/, whose stage never runs it.

A family's seeds are drawn on the metric's scale: lognormal for `log` metrics (a geometric mean
and a spread of log values), normal for `raw` ones, and for `asinh` normal raw values (KID's
estimates scatter additively around their mean, negative ones included).
"""

from dataclasses import dataclass

import numpy as np

from genbench.compare.verdict import rank
from genbench.core.metric_registry import LOG


@dataclass(frozen=True)
class Truth:
    """One family's true distribution of seed values: `centre` (the geometric mean for log
    metrics, else the mean) and `spread` (the sd of log values for log metrics, else the sd)."""

    centre: float
    spread: float


def draw(truth: Truth, scale: str, n: int, rng: np.random.Generator) -> list[float]:
    """n seed values of one family."""
    if scale == LOG:
        return [float(v) for v in np.exp(rng.normal(np.log(truth.centre), truth.spread, n))]
    return [float(v) for v in rng.normal(truth.centre, truth.spread, n)]


def rates(
    truths: dict[str, Truth],
    scale: str,
    better: str,
    n: int,
    reps: int,
    seed: int = 0,
    confidence: float = 0.95,
    margin: float = 0.1,
    constant: float = 1.0,
    test_scale: str | None = None,
) -> dict[str, float]:
    """Over `reps` draws of n seeds per family: the share of rankings with any pair separated,
    with a "best", with each pair separated, and with each pair called equivalent.
    `test_scale`: rank on another scale than the one drawn on (to compare scales)."""
    rng = np.random.default_rng(seed)
    counts: dict[str, float] = {"any_separated": 0, "best": 0}
    for _ in range(reps):
        values = {family: draw(truth, scale, n, rng) for family, truth in truths.items()}
        found = rank(
            values, better, test_scale or scale, confidence, margin, constant, needed=False
        )
        counts["any_separated"] += any(p["separated"] for p in found["pairs"].values())
        counts["best"] += found["best"] is not None
        for pair in found["pairs"].values():
            names = "_vs_".join(sorted((pair["better"], pair["worse"])))
            counts[f"separated:{names}"] = counts.get(f"separated:{names}", 0) + pair["separated"]
            equivalent = pair["equivalence"]["equivalent"]
            counts[f"equivalent:{names}"] = counts.get(f"equivalent:{names}", 0) + equivalent
    return {key: value / reps for key, value in counts.items()}
