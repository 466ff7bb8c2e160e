"""Seeds on demand (`python -m pipelines.run --until-decided --max-seeds N`): after a run, add
seeds only while some pair of families is neither separated nor shown equivalent, but the power
estimate says at most N seeds per family would separate it at the spread observed.

Looking at the data and then adding seeds inflates the error rate unless the tests account for
the looks: the first look fixes a number of planned looks K (`verdict.sequential_looks`) and
every look tests at (1 - confidence) / K (Bonferroni over looks: valid whatever the stopping
rule, conservative). `verdict.initial_seeds` keeps the seeds it started from, so the report can
say which were added. No Prefect here: pipelines/run.py loops the flow.
"""

import re
from pathlib import Path
from typing import Any

from genbench.core.errors import ParamsError

DEFAULT_LOOKS = 3  # the first run and at most two additions


def undecided(compare: dict[str, Any], max_seeds: int) -> dict[str, int]:
    """Pairs (`<metric>: <a>_vs_<b>`) neither separated nor equivalent whose estimated seeds
    needed are at most max_seeds, with that count."""
    found = {}
    for metric, verdict in (compare.get("verdicts") or {}).items():
        for key, pair in verdict["pairs"].items():
            needed = pair.get("seeds_needed")
            if pair["separated"] or pair["equivalence"]["equivalent"] or needed is None:
                continue
            if needed <= max_seeds:
                found[f"{metric}: {key}"] = needed
    return found


def more_seeds(compare: dict[str, Any], seeds: list[int], max_seeds: int) -> list[int]:
    """The seeds to add (new ones above the largest) so that every pair the power estimate
    says N <= max_seeds would decide gets N seeds; [] when none would."""
    wanted = max(undecided(compare, max_seeds).values(), default=0)
    start = max(seeds) + 1
    return list(range(start, start + max(0, wanted - len(seeds))))


def set_keys(params: Path, section: str, values: dict[str, str]) -> None:
    """Write `<section>.<key>: <value>` lines of params.yaml in place, keeping every comment
    and every other line; a key not in the section is a ParamsError."""
    lines = params.read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{section}:")), None)
    if start is None:
        raise ParamsError(f"{params}: no {section} section; add one (see the repo's params.yaml)")
    for key, value in values.items():
        pattern = re.compile(rf"^(  {re.escape(key)}:)[^#\n]*?(\s*#.*)?$")
        found = False
        for index in range(start + 1, len(lines)):
            if lines[index].strip() and not lines[index].startswith((" ", "#")):
                break  # the next section
            matched = pattern.match(lines[index].rstrip("\n"))
            if matched:
                comment = matched.group(2) or ""
                lines[index] = f"{matched.group(1)} {value}{comment}\n"
                found = True
                break
        if not found:
            raise ParamsError(
                f"{params}: {section}.{key} is missing; add `{key}: ...` to the {section} section"
            )
    params.write_text("".join(lines))


def yaml_list(values: list[int]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"
