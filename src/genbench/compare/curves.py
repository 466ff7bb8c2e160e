"""Quality against compute over seeds: each family's curve (mean and interval of FID and KID at
every snapshot fraction of the budget), the ranking at each fraction by the final verdict's rule
on KID alone (unbiased at the curve's few samples, where FID's bias differs between models: Chong
& Forsyth 2020), and the early warning: a family whose final weights score significantly worse
than an earlier snapshot of the same trainings (a sign of GAN collapse or overfitting).

compare.json's `curve` (curve_section):
    samples, extractor: how each point was scored (evaluate.curve_samples images)
    families.<family>: [{fraction, step, flops, images_seen, fid: summary, kid_mean: summary}]
    best.<metric>.<family>: the fraction with the best mean
    verdict_metric, verdict_reason: the metric judged along the budget (KID) and why
    verdicts.<metric>: [{fraction, ...the ranking of compare/verdict.py}] (KID only)
    warnings: [{family, metric, last, better: {fraction, step, mean}, p_holm}]
"""

import csv
from pathlib import Path

import numpy as np

from genbench.compare.stats import holm, paired_p, summary
from genbench.compare.verdict import rank
from genbench.config.verdict import VerdictParams
from genbench.core.errors import GenbenchError
from genbench.core.metric_registry import CURVE_METRICS as CURVE_KEYS
from genbench.core.metric_registry import CURVE_VERDICT_METRIC, LOWER, by_leaf

CURVE_METRICS = tuple((key, by_leaf(key).better) for key in CURVE_KEYS)
VERDICT_REASON = (
    "KID alone: it is unbiased at the curve's few samples per point, while FID's bias at that "
    "count is large and differs between models (Chong & Forsyth 2020), so an FID ranking there "
    "could reflect the bias, not the models"
)
POINT_KEYS = ("fraction", "step", "flops", "images_seen")


def aggregate_curves(curves: dict[str, list[dict]], confidence: float) -> dict[str, list[dict]]:
    """Per family, per snapshot fraction: the point's budget figures and each metric's summary
    over the seeds (`curves[family]`: one evaluation's `curve` per seed)."""
    out = {}
    for family, per_seed in curves.items():
        fractions = {tuple(p["fraction"] for p in curve["points"]) for curve in per_seed}
        if len(fractions) != 1:
            raise GenbenchError(
                f"{family}'s seeds were trained with different compare.snapshots; "
                "rerun `dvc repro` so every seed is retrained with the current list"
            )
        points = []
        for i, first in enumerate(per_seed[0]["points"]):
            point = {key: first[key] for key in POINT_KEYS}
            for metric, _ in CURVE_METRICS:
                values = [curve["points"][i][metric] for curve in per_seed]
                point[metric] = {**summary(values, confidence), "values": values}
            points.append(point)
        out[family] = points
    return out


def curve_verdicts(
    curves: dict[str, list[dict]],
    kid_std: dict[float, float],
    confidence: float,
    wording: VerdictParams,
) -> dict[str, list[dict]]:
    """For KID and each fraction every family reached: the ranking of compare/verdict.py, with
    the asinh scale's constant at that fraction (`kid_std`: the median KID standard error)."""
    shared = sorted(set.intersection(*({p["fraction"] for p in c} for c in curves.values())))
    metric = by_leaf(CURVE_VERDICT_METRIC)
    found: list[dict] = []
    for fraction in shared:
        values = {
            family: next(p for p in points if p["fraction"] == fraction)[metric.metric]["values"]
            for family, points in curves.items()
        }
        if len(values) < 2:
            continue
        judged = rank(
            values,
            metric.better,
            metric.scale,
            confidence,
            wording.equivalence_margin,
            kid_std.get(fraction, 1.0),
            wording.sequential_looks,
        )
        found.append({"fraction": fraction, **judged})
    return {metric.metric: found}


def median_kid_std(per_seed: dict[str, list[dict]]) -> dict[float, float]:
    """Per fraction, the median of every run's KID standard error at that point (positive
    ones; 1.0 where none is)."""
    found: dict[float, list[float]] = {}
    for runs in per_seed.values():
        for curve in runs:
            for point in curve["points"]:
                if point.get("kid_std", 0) > 0:
                    found.setdefault(point["fraction"], []).append(point["kid_std"])
    return {fraction: float(np.median(values)) for fraction, values in found.items()}


def curve_warnings(curves: dict[str, list[dict]], confidence: float) -> list[dict]:
    """Families whose last point is significantly worse than an earlier one: the final weights
    against every earlier snapshot by a paired t-test over the seeds (the same seed trained
    both), Holm-adjusted over all those comparisons; names the best of the earlier points that
    are better by mean and significant."""
    warnings = []
    for family, points in curves.items():
        last = points[-1]
        for metric, better in CURVE_METRICS:
            sign = 1.0 if better == LOWER else -1.0
            adjusted = holm(
                {
                    i: paired_p(last[metric]["values"], point[metric]["values"])
                    for i, point in enumerate(points[:-1])
                }
            )
            alpha = 1.0 - confidence
            significant = [
                i
                for i, p in adjusted.items()
                if p is not None
                and p < alpha
                and sign * (last[metric]["mean"] - points[i][metric]["mean"]) > 0
            ]
            if not significant:
                continue
            best = min(significant, key=lambda i: sign * points[i][metric]["mean"])
            warnings.append(
                {
                    "family": family,
                    "metric": metric,
                    "last": {"fraction": last["fraction"], "mean": last[metric]["mean"]},
                    "better": {
                        "fraction": points[best]["fraction"],
                        "step": points[best]["step"],
                        "mean": points[best][metric]["mean"],
                    },
                    "p_holm": adjusted[best],
                }
            )
    return warnings


def write_curve_tables(curves: dict[str, list[dict]], folder: Path) -> None:
    """One CSV per family (for `dvc plots`): per fraction the training FLOPs and images, and
    each metric's mean and interval over the seeds."""
    folder.mkdir(parents=True, exist_ok=True)
    for family, points in curves.items():
        rows = []
        for point in points:
            row = {key: point[key] for key in POINT_KEYS}
            for metric, _ in CURVE_METRICS:
                stats = point[metric]
                row |= {metric: stats["mean"], f"{metric}_low": stats["ci_low"]}
                row[f"{metric}_high"] = stats["ci_high"]
            rows.append(row)
        with (folder / f"{family}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def best_fractions(curves: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Per metric, each family's fraction with the best mean (the report marks it)."""
    found = {}
    for metric, better in CURVE_METRICS:
        sign = 1.0 if better == LOWER else -1.0
        found[metric] = {
            family: points[int(np.argmin([sign * p[metric]["mean"] for p in points]))]["fraction"]
            for family, points in curves.items()
        }
    return found


def curve_section(
    per_seed: dict[str, list[dict]], confidence: float, wording: VerdictParams
) -> dict | None:
    """compare.json's `curve` from each family's per-seed curves (None: no model has one)."""
    if not per_seed or any(curve is None for runs in per_seed.values() for curve in runs):
        return None
    scored = {(c["samples"], c["extractor"]) for runs in per_seed.values() for c in runs}
    if len(scored) != 1:
        raise GenbenchError(
            f"the curves were scored on different sample counts or extractors ({sorted(scored)}); "
            "rerun `dvc repro` so every model is evaluated with the current evaluate section"
        )
    samples, extractor = scored.pop()
    curves = aggregate_curves(per_seed, confidence)
    return {
        "samples": samples,
        "extractor": extractor,
        "families": curves,
        "best": best_fractions(curves),
        "verdict_metric": CURVE_VERDICT_METRIC,
        "verdict_reason": VERDICT_REASON,
        "verdicts": curve_verdicts(curves, median_kid_std(per_seed), confidence, wording),
        "warnings": curve_warnings(curves, confidence),
    }
