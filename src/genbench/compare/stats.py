"""Statistics over seeds: summaries, Welch's t-test and interval, Holm's adjustment, the paired
test, TOST equivalence, the probability of improvement, and the power of Welch's test (how many
seeds would separate two families at the spread observed).

Pure functions of lists of floats (one value per seed); scipy.stats does the distributions.
compare/verdict.py turns them into the ranking of families per metric.
"""

import math
from collections.abc import Hashable, Sequence

import numpy as np
from scipy import special, stats

from genbench.core.metric_registry import ASINH, LOG, LOWER

MAX_SEEDS_NEEDED = 100  # the power search stops here: "more than 100 seeds"


def summary(values: list[float], confidence: float) -> dict:
    """n, mean, sample standard deviation and the two-sided t interval of the mean.

    With one value there is no spread and no interval (None): one seed says nothing about
    seed-to-seed noise.
    """
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci_low": None, "ci_high": None, "half": None}
    std = float(np.std(values, ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * std / math.sqrt(n))
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "half": half,
    }


def to_scale(values: Sequence[float], scale: str, constant: float = 1.0) -> list[float]:
    """Seed values on the scale they are compared on: log, asinh(x / constant) or raw."""
    array = np.asarray(values, dtype=float)
    if scale == LOG:
        return [float(v) for v in np.log(array)]
    if scale == ASINH:
        return [float(v) for v in np.arcsinh(array / constant)]
    return [float(v) for v in array]


def noise_constant(standard_errors: Sequence[float]) -> float:
    """The asinh scale's constant for KID: the median of the runs' positive KID standard errors
    (`kid_std`); 1.0 when there is none."""
    positive = [v for v in standard_errors if v > 0]
    return float(np.median(positive)) if positive else 1.0


def _variance(values: Sequence[float]) -> float:
    """The sample variance (n - 1), in plain Python: numpy's call overhead dominates at n = 3."""
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _welch_parts(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(mean(a) - mean(b), its standard error, Welch-Satterthwaite degrees of freedom)."""
    va, vb = _variance(a) / len(a), _variance(b) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else math.inf
    return sum(a) / len(a) - sum(b) / len(b), se, float(df)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances) on two families' seed values.

    None when it cannot be computed (fewer than 2 values on a side). Two constant samples: 0 if
    their values differ (no noise at all separates them), 1 if they are equal.
    """
    if len(a) < 2 or len(b) < 2:
        return None
    if np.std(a) == 0 and np.std(b) == 0:
        return 0.0 if np.mean(a) != np.mean(b) else 1.0
    difference, se, df = _welch_parts(a, b)
    # scipy's ttest_ind(equal_var=False) computes the same; the special function is ~50x faster,
    # which the calibration's thousands of rankings need
    return float(2 * special.stdtr(df, -abs(difference) / se))


def welch_interval(
    a: Sequence[float], b: Sequence[float], confidence: float
) -> tuple[float, float | None, float | None]:
    """mean(a) - mean(b) and its two-sided Welch t interval (None, None with under 2 values)."""
    if len(a) < 2 or len(b) < 2:
        return float(np.mean(a) - np.mean(b)), None, None
    difference, se, df = _welch_parts(a, b)
    half = float(special.stdtrit(df, (1 + confidence) / 2)) * se if se > 0 else 0.0
    return difference, difference - half, difference + half


def tost_p(a: Sequence[float], b: Sequence[float], margin: float) -> float | None:
    """p-value of the two one-sided Welch tests (Schuirmann 1987) that |mean(a) - mean(b)| is
    below `margin`: small means "equivalent within the margin". None with under 2 values."""
    if len(a) < 2 or len(b) < 2:
        return None
    difference, se, df = _welch_parts(a, b)
    if se == 0:
        return 0.0 if abs(difference) < margin else 1.0
    above_lower = special.stdtr(df, -(difference + margin) / se)  # H0: difference <= -margin
    below_upper = special.stdtr(df, (difference - margin) / se)  # H0: difference >= +margin
    return float(max(above_lower, below_upper))


def paired_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of the paired t-test of a[i] against b[i] (the same seeds' models at two
    points of one training). None with fewer than 2 pairs; constant differences: 0 if they are
    not zero, else 1."""
    if len(a) != len(b) or len(a) < 2:
        return None
    differences = np.subtract(a, b)
    if np.std(differences) == 0:
        return 0.0 if differences[0] != 0 else 1.0
    return float(stats.ttest_rel(a, b).pvalue)


def holm(p_values: dict[Hashable, float | None]) -> dict[Hashable, float | None]:
    """Holm's step-down adjustment of several p-values (None stays None and counts as 1)."""
    order = sorted(p_values, key=lambda k: 1.0 if p_values[k] is None else p_values[k])
    m, running, adjusted = len(order), 0.0, {}
    for rank, key in enumerate(order):
        raw = p_values[key]
        if raw is None:
            adjusted[key] = None
            continue
        running = max(running, min(1.0, (m - rank) * raw))
        adjusted[key] = running
    return adjusted


def probability_of_improvement(a: Sequence[float], b: Sequence[float], better: str) -> float:
    """The share of seed pairs (one of a, one of b) in which a beats b, ties counting half: the
    Mann-Whitney statistic over n_a * n_b, as rliable reports it (Agarwal et al. 2021)."""
    sign = -1.0 if better == LOWER else 1.0
    wins = sum(1.0 if sign * (x - y) > 0 else 0.5 if x == y else 0.0 for x in a for y in b)
    return wins / (len(a) * len(b))


def welch_power(difference: float, sd_a: float, sd_b: float, n: int, alpha: float) -> float:
    """Power of the two-sided Welch test at level alpha with n seeds per family, when the true
    difference of means and the standard deviations are the given ones (noncentral t)."""
    variance = (sd_a**2 + sd_b**2) / n
    if variance == 0:
        return 1.0 if difference != 0 else 0.0
    df = variance**2 / ((sd_a**4 + sd_b**4) / (n**2 * (n - 1)))
    noncentrality = abs(difference) / math.sqrt(variance)
    critical = float(stats.t.ppf(1 - alpha / 2, df))
    found = float(
        stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
    )
    if math.isfinite(found):
        return found
    # scipy's noncentral t gives NaN far in its tail (large noncentrality): the normal limit
    return float(
        stats.norm.sf(critical - noncentrality) + stats.norm.cdf(-critical - noncentrality)
    )


def seeds_needed(
    difference: float, sd_a: float, sd_b: float, alpha: float, power: float = 0.8
) -> int | None:
    """The fewest seeds per family at which Welch's test at `alpha` separates two families with
    probability `power`, taking the observed difference and spreads as the truth; None when no
    count up to MAX_SEEDS_NEEDED does (or nothing differs)."""
    if difference == 0:
        return None
    if welch_power(difference, sd_a, sd_b, MAX_SEEDS_NEEDED, alpha) < power:
        return None
    low, high = 1, MAX_SEEDS_NEEDED  # power grows with n: bisect for the first n that reaches it
    while high - low > 1:
        middle = (low + high) // 2
        if welch_power(difference, sd_a, sd_b, middle, alpha) >= power:
            high = middle
        else:
            low = middle
    return high
