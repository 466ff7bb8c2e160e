"""Statistics over seeds: mean, standard deviation, Student-t confidence interval, Welch's t-test
between families, and the verdict rule (a best family only when it is significantly better).

Pure functions of lists of floats (one value per seed); scipy.stats does the distributions.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LOWER, HIGHER = "lower", "higher"  # what "better" means for a metric

# The quality metrics a verdict is given for: (group, metric, what is better). "@" stands for
# the feature extractor's group (evaluator or inception-v3-compat).
VERDICT_METRICS = (
    ("@", "fid", LOWER),
    ("@", "kid_mean", LOWER),
    ("@", "is_mean", HIGHER),
    ("@", "precision", HIGHER),
    ("@", "recall", HIGHER),
    ("@", "density", HIGHER),
    ("@", "coverage", HIGHER),
    ("ssim", "diversity_gap", LOWER),  # |diversity SSIM - that of real images|: near real wins
)


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


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances) on two families' seed values.

    None when it cannot be computed (fewer than 2 values on a side). Two constant samples: 0 if
    their values differ (no noise at all separates them), 1 if they are equal.
    """
    if len(a) < 2 or len(b) < 2:
        return None
    if np.std(a) == 0 and np.std(b) == 0:
        return 0.0 if np.mean(a) != np.mean(b) else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


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


@dataclass(frozen=True)
class Verdict:
    """One metric's verdict. leader: the family with the best mean; best: the leader when it
    is significantly better than every other family, else None; tied: the families the test
    cannot separate from the leader (the leader included); p: Holm-adjusted p-value of the
    leader against each other family (None: not testable)."""

    leader: str
    best: str | None
    tied: list[str]
    p: dict[str, float | None]


def holm(p_values: dict[str, float | None]) -> dict[str, float | None]:
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


def verdict(values: dict[str, list[float]], better: str, confidence: float) -> Verdict:
    """The leader by mean, and whether it beats every other family at `confidence`.

    The leader is compared with each other family by Welch's t-test, Holm-adjusted for the
    number of comparisons; `best` is set only when every adjusted p-value is below
    1 - confidence. With one seed nothing is significant.
    """
    sign = 1.0 if better == LOWER else -1.0
    leader = min(values, key=lambda name: sign * float(np.mean(values[name])))
    others = [name for name in values if name != leader]
    p = holm({name: welch_p(values[leader], values[name]) for name in others})
    alpha = 1.0 - confidence
    separated = {name for name in others if p[name] is not None and p[name] < alpha}
    tied = [leader, *[name for name in others if name not in separated]]
    best = leader if others and len(separated) == len(others) else None
    return Verdict(leader, best, tied, p)
