"""The verdict per metric: every pair of families tested (Welch's t-test on the metric's scale,
Holm-adjusted over all pairs), ordered groups as a compact letter display, an effect size with
its interval and the probability of improvement per pair, TOST equivalence, how many seeds
would separate a pair not separated, and a borderline mark.

The words follow the statistics (README "Reading a verdict"):
- "A ≻ B": separated (Holm-adjusted p < alpha), A better.
- "A ≈ B": equivalent: TOST shows the difference inside ±equivalence_margin.
- "{A, B}": not separated with n seeds: neither shown different nor shown equivalent.
- "best": the one family separated from every other and ahead of them.
- "borderline": an adjusted p within a factor of 2 of alpha; such a verdict can flip on another
  machine (CPU types differ in the last digits) or with another seed.
"""

import itertools
import math
import string

import numpy as np

from genbench.compare.stats import (
    holm,
    probability_of_improvement,
    seeds_needed,
    to_scale,
    tost_p,
    welch_interval,
    welch_p,
)
from genbench.core.metric_registry import ASINH, LOG, LOWER, RAW

BORDERLINE_FACTOR = 2.0  # an adjusted p within this factor of alpha is borderline


def pair_key(a: str, b: str) -> str:
    return f"{a}_vs_{b}"


def equivalence_bound(scale: str, margin: float, raw_a: list[float], raw_b: list[float]) -> float:
    """The TOST bound on the test's scale for a relative margin: log(1 + margin) for ratios
    (log, and asinh, which is a log far above the estimator's noise), margin times the two
    means' average magnitude for raw values."""
    if scale in (LOG, ASINH):
        return math.log1p(margin)
    return margin * (abs(float(np.mean(raw_a))) + abs(float(np.mean(raw_b)))) / 2


def effect(
    scale: str,
    a: list[float],
    b: list[float],
    raw_a,
    raw_b,
    confidence: float,
    constant: float = 1.0,
) -> dict:
    """a against b with its Welch interval (unadjusted), always a monotone map of the interval
    on the test's scale, so it excludes "no difference" exactly when that interval does:
    log: the ratio of geometric means; raw: the difference of means; asinh: the difference of
    the back-transformed means, the interval mapped through b's back-transformed mean."""
    if scale == LOG:
        difference, low, high = welch_interval(a, b, confidence)
        back = [None if v is None else math.exp(v) for v in (difference, low, high)]
        return {"kind": "ratio", "estimate": back[0], "ci_low": back[1], "ci_high": back[2]}
    if scale == ASINH:
        difference, low, high = welch_interval(a, b, confidence)
        centre = float(np.mean(b))

        def shifted(by: float | None) -> float | None:
            if by is None:
                return None
            return constant * (math.sinh(centre + by) - math.sinh(centre))

        return {
            "kind": "difference",
            "estimate": shifted(difference),
            "ci_low": shifted(low),
            "ci_high": shifted(high),
        }
    difference, low, high = welch_interval(raw_a, raw_b, confidence)
    return {"kind": "difference", "estimate": difference, "ci_low": low, "ci_high": high}


def letters(order: list[str], separated: set[frozenset]) -> dict[str, str]:
    """A compact letter display (Piepho 2004, insert and absorb): families that share a letter
    are not separated; letters run from the best family's group on."""
    groups = [set(order)]
    for pair in separated:
        i, j = tuple(pair)
        split = []
        for group in groups:
            split += [group - {i}, group - {j}] if {i, j} <= group else [group]
        groups = []
        for group in sorted(split, key=len, reverse=True):  # absorb: keep the maximal sets
            if group and not any(group <= kept for kept in groups):
                groups.append(group)
    groups.sort(key=lambda g: sorted(order.index(f) for f in g))
    found = {f: "" for f in order}
    for letter, group in zip(string.ascii_lowercase, groups, strict=False):
        for family in group:
            found[family] += letter
    return found


def _judge_pair(a, b, t, raw, scale, confidence, margin, constant) -> dict:
    """A pair's raw tests (Holm comes after, over all pairs); a is the better by mean."""
    bound = equivalence_bound(scale, margin, raw[a], raw[b])
    return {
        "better": a,
        "worse": b,
        "p": welch_p(t[a], t[b]),
        "effect": effect(scale, t[a], t[b], raw[a], raw[b], confidence, constant),
        "probability_of_improvement": None,  # set by rank() with the direction
        "equivalence": {"margin": margin, "bound": bound, "p": tost_p(t[a], t[b], bound)},
    }


def _ranking_text(order: list[str], found: dict[str, str], pairs: dict[str, dict]) -> str:
    """'gan ≻ {vae, ddpm}', 'gan ≈ vae ≻ ddpm', or with letters when the groups overlap."""
    groups: dict[str, list[str]] = {}
    for family in order:
        groups.setdefault(found[family], []).append(family)
    if any(len(code) != 1 for code in found.values()):  # overlapping groups: letters
        return ", ".join(f"{f} ({found[f]})" for f in order)
    parts = []
    for members in groups.values():
        inside = [pairs[pair_key(*p)] for p in itertools.combinations(members, 2)]
        if len(members) == 1:
            parts.append(members[0])
        elif all(p["equivalence"]["equivalent"] for p in inside):
            parts.append(" ≈ ".join(members))
        else:
            parts.append("{" + ", ".join(members) + "}")
    return " ≻ ".join(parts)


def rank(
    values: dict[str, list[float]],
    better: str,
    scale: str,
    confidence: float,
    margin: float,
    constant: float = 1.0,
    looks: int = 1,
    needed: bool = True,
) -> dict:
    """The ranking of the families on one metric (see the module docstring): compare.json's
    `verdicts.<metric>` without the metric's own keys. `looks`: planned sequential looks
    (seeds on demand), each tested at alpha / looks (Bonferroni over looks). `needed`: False
    skips the seeds-needed search (simulations)."""
    alpha = (1.0 - confidence) / looks
    scale = RAW if scale == LOG and min(min(v) for v in values.values()) <= 0 else scale
    t = {f: to_scale(v, scale, constant) for f, v in values.items()}
    sign = 1.0 if better == LOWER else -1.0
    order = sorted(values, key=lambda f: sign * float(np.mean(values[f])))
    pairs = {}
    for i, j in itertools.combinations(order, 2):
        pairs[pair_key(i, j)] = _judge_pair(i, j, t, values, scale, confidence, margin, constant)
        pairs[pair_key(i, j)]["probability_of_improvement"] = probability_of_improvement(
            values[i], values[j], better
        )
    adjusted = holm({k: p["p"] for k, p in pairs.items()})
    equivalent = holm({k: p["equivalence"]["p"] for k, p in pairs.items()})
    n = min(len(v) for v in values.values())
    separated = set()
    for key, pair in pairs.items():
        p_holm = adjusted[key]
        pair["p_holm"] = p_holm
        pair["separated"] = p_holm is not None and p_holm < alpha
        pair["borderline"] = (
            p_holm is not None and alpha / BORDERLINE_FACTOR <= p_holm <= alpha * BORDERLINE_FACTOR
        )
        pair["equivalence"]["p_holm"] = equivalent[key]
        pair["equivalence"]["equivalent"] = (
            not pair["separated"] and equivalent[key] is not None and equivalent[key] < alpha
        )
        pair["seeds_needed"] = None
        if pair["separated"]:
            separated.add(frozenset((pair["better"], pair["worse"])))
        elif needed and n >= 2 and not pair["equivalence"]["equivalent"]:
            a, b = t[pair["better"]], t[pair["worse"]]
            sds = float(np.std(a, ddof=1)), float(np.std(b, ddof=1))
            difference = float(np.mean(a) - np.mean(b))
            pair["seeds_needed"] = seeds_needed(difference, *sds, alpha / len(pairs))
    found = letters(order, separated)
    top = order[0]
    best = top if all(frozenset((top, f)) in separated for f in order[1:]) and order[1:] else None
    return {
        "alpha": alpha,
        "looks": looks,
        "n": n,
        "scale": scale,
        "scale_constant": constant if scale == ASINH else None,
        "order": order,
        "leader": top,
        "best": best if n >= 2 else None,
        "letters": found,
        "ranking": _ranking_text(order, found, pairs) if n >= 2 else "",
        "pairs": pairs,
        "borderline": sorted(k for k, p in pairs.items() if p["borderline"]),
    }
