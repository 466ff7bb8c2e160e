"""Whether the feature spaces agree: per metric, each pair of families as every space's verdict
(compare/verdict.py) words it, and one line saying where the spaces agree and where not.

The words compare verdicts; they add no test of their own:
- "agree": every pair gets the same words in every space ("gan ≻ vae", "gan ≈ vae" or "not
  separated").
- "disagree": some pair is separated one way in one space and the other way in another.
- "differ": no such contradiction, but some pair is separated (or equivalent) in one space and
  not in another.
Each space's own ranking is Holm-adjusted over its pairs only: a pair separated in one space is
not more separated for being separated in two (the spaces share the same images).
"""

import itertools
from typing import Any

AGREE, DIFFER, DISAGREE = "agree", "differ", "disagree"
OPEN = "not separated"


def relation(verdict: dict, a: str, b: str) -> str:
    """How one space's verdict words the pair a, b: 'a ≻ b', 'b ≻ a', 'a ≈ b' or OPEN."""
    pair = verdict["pairs"].get(f"{a}_vs_{b}") or verdict["pairs"][f"{b}_vs_{a}"]
    if pair["separated"]:
        return f"{pair['better']} ≻ {pair['worse']}"
    if pair["equivalence"]["equivalent"]:
        return f"{pair['better']} ≈ {pair['worse']}"
    return OPEN


def _contradicts(words: list[str]) -> bool:
    separated = {w for w in words if "≻" in w}
    return len(separated) > 1


def agreement(verdicts: dict[str, dict]) -> dict[str, Any]:
    """One metric's verdict in every space ({space: verdict}, the primary first): its ranking
    per space, each pair's words per space, the status and the sentence."""
    spaces = list(verdicts)
    families = sorted(set().union(*(v["order"] for v in verdicts.values())))
    pairs, parts = {}, []
    for a, b in itertools.combinations(families, 2):
        words = {s: relation(v, a, b) for s, v in verdicts.items()}
        same = len(set(words.values())) == 1
        pair_status = AGREE if same else DISAGREE if _contradicts([*words.values()]) else DIFFER
        pairs[f"{a}_vs_{b}"] = {"families": [a, b], "status": pair_status, "by_space": words}
        if pair_status != AGREE:
            each = "; ".join(f"{s}: {w}" for s, w in words.items())
            parts.append(f"{pair_status} on {a} vs {b} ({each})")
    found = {p["status"] for p in pairs.values()}
    status = DISAGREE if DISAGREE in found else DIFFER if DIFFER in found else AGREE
    agreeing = sum(p["status"] == AGREE for p in pairs.values())
    if status == AGREE:
        text = f"the {len(spaces)} feature spaces agree on every pair ({', '.join(spaces)})"
    else:
        text = (
            f"the feature spaces {'; '.join(parts)}; they agree on {agreeing} of {len(pairs)} pairs"
        )
    return {
        "spaces": spaces,
        "rankings": {s: v["ranking"] for s, v in verdicts.items()},
        "status": status,
        "pairs": pairs,
        "text": text,
    }


def agreements(by_space: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """compare.json's `agreement`: per verdict metric that two or more spaces rank
    ({space: {metric: verdict}}, the primary space first)."""
    metrics = dict.fromkeys(m for verdicts in by_space.values() for m in verdicts)
    found = {}
    for metric in metrics:
        have = {s: v[metric] for s, v in by_space.items() if metric in v}
        if len(have) >= 2:
            found[metric] = agreement(have)
    return found
