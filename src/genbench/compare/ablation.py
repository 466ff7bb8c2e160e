"""An ablation's verdicts: each option of a family against the family's default run (the
baseline), on the VALIDATION split, with the compare stage's own statistics (verdict.rank:
Welch's t-test on the metric's scale, Holm over every pair of the family's runs, TOST for
"equivalent"). Selection never reads the test split, so the report's test numbers stay unbiased.

Input: compare.json of the baseline and of each option's run (`families.<family>.val` holds each
val metric's per-seed values, scored in the primary feature space).
"""

from collections.abc import Mapping
from typing import Any

from genbench.compare.stats import noise_constant
from genbench.compare.verdict import pair_key, rank
from genbench.core.metric_registry import by_key

BASELINE = "baseline"
ABLATION_METRICS = ("fid", "kid")  # registry keys; the first one decides a winner
BETTER, WORSE, EQUIVALENT, NOT_SEPARATED = "better", "worse", "equivalent", "not separated"


def val_stats(compare: Mapping[str, Any], family: str) -> dict[str, dict]:
    """{leaf (`fid`, `kid_mean`, `kid_std`): its summary with per-seed `values`} of one run."""
    try:
        return dict(compare["families"][family]["val"])
    except KeyError:
        raise ValueError(f"compare.json has no validation scores for {family!r}") from None


def against_baseline(result: dict, option: str) -> dict:
    """The pair of `option` and the baseline in one metric's ranking (keyed better first)."""
    pairs = result["pairs"]
    return pairs.get(pair_key(option, BASELINE)) or pairs[pair_key(BASELINE, option)]


def relation(pair: dict, option: str) -> str:
    """How `option` stands against the baseline in their pair, in the verdict's words."""
    if pair["separated"]:
        return BETTER if pair["better"] == option else WORSE
    return EQUIVALENT if pair["equivalence"]["equivalent"] else NOT_SEPARATED


def judge_family(
    baseline: Mapping[str, Any],
    options: Mapping[str, Mapping[str, Any]],
    family: str,
    confidence: float,
    margin: float,
) -> dict[str, Any]:
    """Every option of `family` against the baseline, per ablation metric.

    Returns {"rankings": {metric key: verdict.rank's result}, "options": {option: {metric key:
    {"relation", "p_holm", "p_equivalence", "effect"}, "winner": bool}}}. An option wins when it
    is separated from the baseline and better on the first ablation metric and not worse on the
    others.
    """
    runs = {BASELINE: val_stats(baseline, family)}
    runs |= {name: val_stats(compare, family) for name, compare in options.items()}
    # the asinh scale's constant, as the compare stage's kid_noise, over this ablation's runs
    constant = noise_constant(
        [v for stats in runs.values() for v in stats.get("kid_std", {}).get("values", [])]
    )
    rankings, verdicts = {}, {name: {} for name in options}
    for key in ABLATION_METRICS:
        metric = by_key(key)
        values = {name: stats[metric.metric]["values"] for name, stats in runs.items()}
        result = rank(values, metric.better, metric.scale, confidence, margin, constant)
        rankings[key] = result
        for name in options:
            pair = against_baseline(result, name)
            verdicts[name][key] = {
                "relation": relation(pair, name),
                "p_holm": pair["p_holm"],  # Welch's, Holm-adjusted: "better" or "worse"
                "p_equivalence": pair["equivalence"]["p_holm"],  # TOST's: "equivalent"
                "effect": pair["effect"],
            }
    first, rest = ABLATION_METRICS[0], ABLATION_METRICS[1:]
    for found in verdicts.values():
        found["winner"] = found[first]["relation"] == BETTER and all(
            found[key]["relation"] != WORSE for key in rest
        )
    return {"rankings": rankings, "options": verdicts}
