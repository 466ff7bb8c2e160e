"""Quality against compute in the report: the data of the curve figure (FID and KID against
training FLOPs and wall seconds, a band over seeds per family, the real floor at the curve's
sample count, each family's best snapshot marked), the verdict along the budget when it changes,
and the early warning of a family whose final weights are worse than an earlier snapshot.

Everything comes from compare.json: its `curve` (compare/curves.py), and the wall seconds of
each snapshot from each run's training stats (`runs.<name>.stats`).
"""

from typing import Any

import numpy as np

from genbench.core.layout import snapshot_file
from genbench.report.inputs import ReportInputs

CURVE_METRICS = {"fid": "FID", "kid_mean": "KID"}  # compare/curves.py scores these


def percent(fraction: float) -> str:
    """0.125 -> '12.5%', 0.5 -> '50%'."""
    return f"{100 * fraction:g}%"


def _seconds(inputs: ReportInputs, family: str, steps: list[int]) -> list[float] | None:
    """Mean training seconds over seeds up to each step (None when a run lacks them)."""
    per_seed = []
    for shown in inputs.runs_of(family):
        stats = shown.result.stats
        if stats is None:
            return None
        kept, final = stats.snapshot_seconds, stats.steps
        found = [stats.wall_seconds if s == final else kept.get(str(s)) for s in steps]
        if any(value is None for value in found):
            return None
        per_seed.append(found)
    return [float(v) for v in np.mean(per_seed, axis=0)] if per_seed else None


def curve_panels(inputs: ReportInputs) -> list[dict[str, Any]]:
    """One panel per curve metric: per family its points (FLOPs, wall seconds, mean, interval)
    and best fraction, and the floor at the curve's count. [] when there is no curve."""
    curve = inputs.comparison.get("curve")
    if not curve:
        return []
    floor = inputs.real.metrics.get("curve_floor") or {}
    seconds = {
        family: _seconds(inputs, family, [p["step"] for p in curve["families"][family]])
        for family in inputs.families
    }
    panels = []
    for metric, label in CURVE_METRICS.items():
        families = {}
        for family in inputs.families:
            points = curve["families"][family]
            families[family] = {
                "flops": [p["flops"] for p in points],
                "seconds": seconds[family],
                "mean": [p[metric]["mean"] for p in points],
                "low": [p[metric]["ci_low"] for p in points],
                "high": [p[metric]["ci_high"] for p in points],
                "best": [p["fraction"] for p in points].index(curve["best"][metric][family]),
            }
        panels.append({"metric": label, "families": families, "floor": floor.get(metric)})
    return panels


def _state(found: dict, order: list[str]) -> str:
    """The ranking at one fraction, families inside a group in the report's order, so that the
    same groups under another leader read (and merge) as the same verdict."""
    codes = found.get("letters") or {}
    if not found.get("ranking") or any(len(code) != 1 for code in codes.values()):
        return found.get("ranking") or "no verdict"
    groups: dict[str, list[str]] = {}
    for family in sorted(codes, key=lambda f: (codes[f], order.index(f))):
        groups.setdefault(codes[family], []).append(family)
    parts = []
    for members in groups.values():
        inside = [
            p["equivalence"]["equivalent"]
            for p in found["pairs"].values()
            if {p["better"], p["worse"]} <= set(members)
        ]
        joined = " ≈ ".join(members) if inside and all(inside) else ", ".join(members)
        parts.append(joined if len(members) == 1 or all(inside) else "{" + joined + "}")
    return " ≻ ".join(parts)


def _span(first: float, last: float, end: float) -> str:
    """Where along the budget a verdict holds: 'at 25%', 'from 25% to 50%', 'from 50% on'."""
    if first == last:
        return f"at {percent(first)}"
    if last == end:
        return f"from {percent(first)} on"
    return f"from {percent(first)} to {percent(last)}"


def leader_changes(inputs: ReportInputs) -> list[str]:
    """Per judged curve metric (KID) whose ranking differs along the budget, one sentence:
    'KID along the budget: at 25% vae ≻ {gan, ddpm}; from 50% on ddpm ≻ ...'. Nothing when it
    never changes."""
    curve = inputs.comparison.get("curve") or {}
    sentences = []
    for metric, label in CURVE_METRICS.items():
        steps = curve.get("verdicts", {}).get(metric, [])
        segments: list[list] = []  # [first fraction, last fraction, verdict]
        for found in steps:
            state = _state(found, inputs.families)
            if segments and segments[-1][2] == state:
                segments[-1][1] = found["fraction"]
            else:
                segments.append([found["fraction"], found["fraction"], state])
        if len(segments) < 2:
            continue
        end = steps[-1]["fraction"]
        parts = [f"{_span(first, last, end)} {state}" for first, last, state in segments]
        head = f"{label} along the budget ({curve['samples']} samples per point): "
        sentences.append(head + "; ".join(parts))
    return sentences


def warnings(inputs: ReportInputs) -> list[str]:
    """One sentence per family and metric whose final weights score significantly worse than
    an earlier snapshot of the same seeds, naming that snapshot."""
    curve = inputs.comparison.get("curve") or {}
    n = inputs.comparison.get("n")
    found = []
    for warning in curve.get("warnings", []):
        better, label = warning["better"], CURVE_METRICS[warning["metric"]]
        found.append(
            f"{warning['family']}: its final {label} ({warning['last']['mean']:.4g}) is "
            f"significantly worse than at {percent(better['fraction'])} of the budget "
            f"({better['mean']:.4g}, step {better['step']}; paired t-test over {n} seeds, "
            f"Holm p = {warning['p_holm']:.2g}), a sign of collapse or overfitting: the better "
            f"weights are snapshots/{snapshot_file(better['step'])} in its model folders"
        )
    return found
