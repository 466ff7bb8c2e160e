"""Which ready stage a free worker takes first: the one with the longest path of work below it.

No prefect here. On 2 cores the run ends when its last stage does, so a long stage that starts
last (a DDPM evaluation) leaves the other worker idle. Each stage's priority is its bottom
level: its own expected seconds plus the longest chain of expected seconds downstream of it
(critical-path list scheduling, as ninja does with its build log). Expected seconds come from
the stages' durations in earlier parallel runs of this workspace (HISTORY, local to the
machine), else from stages of the same kind that ran (`train@gan-1` for `train@gan-0`), else
from the mean of what is known, else 1 s each: a first run orders stages by how many stages
each one's path holds, and then by how many stages wait on it (train_evaluator before
trainings). The order only changes when stages start, never what they compute.
"""

import json
import re
from collections.abc import Mapping
from pathlib import Path

import networkx as nx

# the durations of earlier parallel runs' stages here: DVC's own ignored temp folder
HISTORY = Path(".dvc/tmp/genbench-stage-seconds.json")
UNKNOWN_SECONDS = 1.0  # a stage nothing is known about


def kind(stage: str) -> str:
    """Stages of one kind: a foreach stage's items without their trailing number
    (`train@gan-0` and `train@gan-2` are `train@gan`)."""
    return re.sub(r"-\d+$", "", stage)


def expected_seconds(graph: nx.DiGraph, seconds: Mapping[str, float]) -> dict[str, float]:
    """Each stage's expected seconds: its own earlier duration, else its kind's mean, else the
    mean of every known duration, else UNKNOWN_SECONDS."""
    by_kind: dict[str, list[float]] = {}
    for name, value in seconds.items():
        by_kind.setdefault(kind(name), []).append(value)
    known = list(seconds.values())
    fallback = sum(known) / len(known) if known else UNKNOWN_SECONDS
    expected = {}
    for name in graph:
        same = by_kind.get(kind(name))
        expected[name] = seconds.get(name, sum(same) / len(same) if same else fallback)
    return expected


def priorities(
    graph: nx.DiGraph, seconds: Mapping[str, float]
) -> dict[str, tuple[float, int, int]]:
    """A sort key per stage, smallest first: the longest expected path from the stage to the
    end of the graph (its bottom level), then more stages downstream, then dvc.yaml order."""
    expected = expected_seconds(graph, seconds)
    below: dict[str, float] = {}
    for name in reversed(list(nx.topological_sort(graph))):
        below[name] = expected[name] + max((below[s] for s in graph.successors(name)), default=0)
    position = {name: index for index, name in enumerate(graph)}
    return {
        name: (-below[name], -len(nx.descendants(graph, name)), position[name]) for name in graph
    }


def load_history(root: Path) -> dict[str, float]:
    """Stage -> seconds from earlier parallel runs here; empty when there is none or it is
    unreadable (it only orders stages)."""
    try:
        loaded = json.loads((root / HISTORY).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): float(v) for k, v in loaded.items() if isinstance(v, int | float) and v >= 0}


def save_history(root: Path, seconds: Mapping[str, float]) -> None:
    """Merge these stages' seconds into the history (the newest duration of a stage wins)."""
    if not seconds:
        return
    path = root / HISTORY
    merged = load_history(root) | {name: round(value, 1) for name, value in seconds.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
    partial.replace(path)
