"""Power and calibration of the verdict (compare/verdict.py), by simulation and the noncentral t:
the tables of docs/statistics.md.

    .venv/bin/python benchmarks/verdict_power.py [--reps 4000] [--runs metrics/runs]

1. Power: per seed count (3, 5, 8), the smallest difference Welch's test separates with 80%
   power at Holm's strictest level for three families (alpha / 3), in standard deviations and
   as an FID ratio at the seed spreads of the default run's families.
2. Calibration: three families drawn from one distribution per metric scale; the share of
   rankings that separate some pair (must be at most 1 - confidence).
3. Which scale: the issue's planted FID (gan, vae, ddpm) and the default run's KID, drawn again
   from distributions fitted to them; how often each candidate scale separates ddpm from both
   others, and its false-separation rate under a null with the same spreads.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from genbench.calibration import Truth, rates
from genbench.compare.stats import welch_power
from genbench.core.metric_registry import ASINH, LOG, LOWER, RAW

ALPHA, PAIRS, POWER = 0.05, 3, 0.8
RUNS = Path(__file__).resolve().parents[1] / "metrics/runs"  # the default run's, git-tracked
FAMILIES, SEEDS = ("gan", "vae", "ddpm"), (0, 1, 2)
PLANTED_FID = {
    "gan": [13.95, 12.80, 14.12],
    "vae": [13.75, 14.04, 16.93],
    "ddpm": [266.7, 163.2, 174.6],
}


def default_run(metric: str, runs: Path = RUNS) -> dict[str, list[float]]:
    """Per family the seeds' values of `metric` in the primary feature space (`scores` in
    metrics/runs/)."""
    found = {}
    for family in FAMILIES:
        files = [json.loads((runs / f"{family}-{seed}.json").read_text()) for seed in SEEDS]
        found[family] = [float(run["scores"][metric]) for run in files]
    return found


def spreads(runs: Path) -> dict[str, float]:
    """The sd of log FID over seeds per family of the default run."""
    fid = default_run("fid", runs)
    return {f: float(np.std(np.log(v), ddof=1)) for f, v in fid.items()}


def detectable(n: int, alpha: float) -> float:
    """The smallest difference, in standard deviations (both families alike), that Welch's test
    at alpha separates with POWER at n seeds per family (bisection)."""
    low, high = 0.0, 50.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (
            (middle, high)
            if welch_power(middle, 1.0, 1.0, n, alpha) < POWER
            else (
                low,
                middle,
            )
        )
    return high


def power_table(runs: Path) -> list[str]:
    spread = spreads(runs)
    lines = [
        "| seeds per family | difference detected (sd), one pair at α | (sd), Holm's α/3 "
        + "".join(f"| FID ratio at {f}'s log sd {sd:.3f} " for f, sd in spread.items())
        + "|",
        "|---:|---:|---:|" + "---:|" * len(spread),
    ]
    for n in (3, 5, 8):
        single, holm = detectable(n, ALPHA), detectable(n, ALPHA / PAIRS)
        ratios = " | ".join(f"{np.exp(holm * sd):.2f}×" for sd in spread.values())
        lines.append(f"| {n} | {single:.2f} | {holm:.2f} | {ratios} |")
    return lines


def fitted(values: dict[str, list[float]], log: bool) -> dict[str, Truth]:
    if log:
        return {f: Truth(float(np.exp(np.mean(np.log(v)))), float(np.std(np.log(v), ddof=1)))
                for f, v in values.items()}  # fmt: skip
    return {f: Truth(float(np.mean(v)), float(np.std(v, ddof=1))) for f, v in values.items()}


def scale_table(reps: int, runs: Path) -> list[str]:
    lines = [
        "| metric | drawn from | ranked on | ddpm separated from gan | from vae "
        "| any false separation under a null with the same spread |",
        "|---|---|---|---:|---:|---:|",
    ]
    noise = float(np.median([v for f in default_run("kid_std", runs).values() for v in f]))
    kid = fitted(default_run("kid_mean", runs), False)
    cases = [
        ("FID (issue's seeds)", LOG, fitted(PLANTED_FID, True), [RAW, LOG], 1.0),
        ("KID (default run)", RAW, kid, [RAW, ASINH], noise),
    ]
    for metric, drawn, truths, scales, constant in cases:
        worst = max(truths.values(), key=lambda t: t.spread)
        null = {f: Truth(truths["gan"].centre, worst.spread) for f in truths}
        if drawn == RAW:  # the null at the noise of the smallest family: KID near zero
            null = {f: Truth(truths["gan"].centre, truths["gan"].spread) for f in truths}
        for scale in scales:
            found = rates(truths, drawn, LOWER, 3, reps, seed=5, constant=constant,
                          test_scale=scale)  # fmt: skip
            false = rates(null, drawn, LOWER, 3, reps, seed=6, constant=constant,
                          test_scale=scale)  # fmt: skip
            lines.append(
                f"| {metric} | {'lognormal' if drawn == LOG else 'normal'} fitted to the seeds "
                f"| {scale} | {found['separated:ddpm_vs_gan']:.3f} "
                f"| {found['separated:ddpm_vs_vae']:.3f} | {false['any_separated']:.3f} |"
            )
    return lines


def calibration_table(reps: int) -> list[str]:
    lines = ["| scale | truth (all three families) | any pair separated | a best named |",
             "|---|---|---:|---:|"]  # fmt: skip
    cases = [
        (LOG, Truth(15.0, 0.25), "FID, log sd 0.25"),
        (LOG, Truth(15.0, 0.03), "FID, log sd 0.03"),
        (RAW, Truth(0.6, 0.03), "precision 0.6 ± 0.03"),
        (ASINH, Truth(0.05, 0.15), "KID 0.05 ± 0.15 (negatives drawn)"),
    ]
    for scale, truth, label in cases:
        found = rates({f: truth for f in ("gan", "vae", "ddpm")}, scale, LOWER, 3, reps,
                      seed=7, constant=0.15)  # fmt: skip
        lines.append(f"| {scale} | {label} | {found['any_separated']:.3f} | {found['best']:.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--runs", type=Path, default=RUNS, help="the default run's metrics")
    args = parser.parse_args()
    print(f"## Power (80%, Welch, α = {ALPHA})\n")
    print("\n".join(power_table(args.runs)))
    print(f"\n## Calibration ({args.reps} draws, 3 seeds, 3 families, Holm, α = {ALPHA})\n")
    print("\n".join(calibration_table(args.reps)))
    print(f"\n## Which scale ({args.reps} draws of 3 seeds)\n")
    print("\n".join(scale_table(args.reps, args.runs)))


if __name__ == "__main__":
    main()
