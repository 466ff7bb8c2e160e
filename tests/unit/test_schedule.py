"""Which ready stage goes first in a parallel run: expected seconds, bottom levels, the history."""

import heapq

import networkx as nx
import pytest

from pipelines.schedule import (
    HISTORY,
    UNKNOWN_SECONDS,
    expected_seconds,
    kind,
    load_history,
    priorities,
    save_history,
)

FAMILIES = ("gan", "vae", "ddpm")


def default_graph() -> nx.DiGraph:
    """The default graph's shape, nodes in dvc.yaml order (edges point downstream)."""
    graph = nx.DiGraph()
    graph.add_edges_from([("validate", "download"), ("download", "preprocess")])
    trainings = [f"train@{f}-{s}" for f in FAMILIES for s in range(3)]
    graph.add_edges_from(("preprocess", name) for name in trainings)
    graph.add_edge("preprocess", "train_evaluator")
    for name in trainings:
        evaluation = name.replace("train@", "evaluate@")
        graph.add_edges_from([(name, evaluation), ("train_evaluator", evaluation)])
        graph.add_edge(evaluation, "compare")
    graph.add_edges_from([("train_evaluator", "evaluate_real"), ("evaluate_real", "compare")])
    graph.add_edge("compare", "report")
    return graph


# one stage's seconds on a worker, as measured on 2 cores: DDPM evaluations are the long ones
MEASURED = {
    f"train@{f}-{s}": t for f, t in (("gan", 38), ("vae", 63), ("ddpm", 40)) for s in (0, 1, 2)
}
MEASURED |= {
    f"evaluate@{f}-{s}": t for f, t in (("gan", 7), ("vae", 7), ("ddpm", 50)) for s in (0, 1, 2)
}
MEASURED |= {"validate": 3, "download": 3, "preprocess": 5, "train_evaluator": 20}
MEASURED |= {"evaluate_real": 7, "compare": 5, "report": 4}


def makespan(graph: nx.DiGraph, seconds: dict[str, float], key, workers: int = 2) -> float:
    """List scheduling as the flow does it: a free worker takes the ready stage first by key."""
    done, running, now = set(), [], 0.0
    pending = list(graph)
    while pending or running:
        ready = [n for n in pending if all(u in done for u in graph.predecessors(n))]
        for name in sorted(ready, key=key)[: workers - len(running)]:
            pending.remove(name)
            heapq.heappush(running, (now + seconds[name], name))
        now, name = heapq.heappop(running)
        done.add(name)
    return now


def test_a_kind_is_a_foreach_stage_without_its_seed():
    assert kind("train@gan-0") == kind("train@gan-12") == "train@gan"
    assert kind("evaluate@ddpm-1") == "evaluate@ddpm"
    assert kind("train_evaluator") == "train_evaluator"
    assert kind("sub/dvc.yaml:fit-a") == "sub/dvc.yaml:fit-a"  # no trailing number


def test_expected_seconds_fall_back_from_the_stage_to_its_kind_to_the_mean():
    graph = default_graph()
    assert set(expected_seconds(graph, {}).values()) == {UNKNOWN_SECONDS}
    got = expected_seconds(graph, {"train@gan-0": 30.0, "train@gan-1": 40.0, "compare": 5.0})
    assert got["train@gan-0"] == 30.0
    assert got["train@gan-2"] == 35.0  # its kind's mean
    assert got["evaluate@ddpm-0"] == pytest.approx(25.0)  # the mean of all three known


def test_without_history_the_evaluator_goes_before_the_trainings():
    """1 s each: trainings and train_evaluator have equally long paths below them; the evaluator
    has ten evaluations waiting on it."""
    rank = priorities(default_graph(), {})
    ready = [f"train@{f}-{s}" for f in FAMILIES for s in range(3)] + ["train_evaluator"]
    ordered = sorted(ready, key=rank.get)
    assert ordered[0] == "train_evaluator"
    assert ordered[1:] == ready[:-1]  # then dvc.yaml order


def test_with_history_the_longest_work_below_goes_first():
    rank = priorities(default_graph(), MEASURED)
    assert rank["train@ddpm-2"] < rank["train@vae-0"] < rank["train@gan-0"]  # 90 > 70 > 45 s
    assert rank["evaluate@ddpm-0"] < rank["evaluate@gan-0"]
    assert all(rank["validate"] < rank[name] for name in MEASURED if name != "validate")


def test_the_priority_order_ends_the_default_graph_sooner_than_dvc_yaml_order():
    """On two workers with the measured seconds: dvc.yaml order leaves a DDPM evaluation alone
    at the end; the bottom-level order comes within 2% of the work divided by two."""
    graph = default_graph()
    position = {name: i for i, name in enumerate(graph)}
    in_order = makespan(graph, MEASURED, position.get)
    rank = priorities(graph, MEASURED)
    by_priority = makespan(graph, MEASURED, rank.get)
    chain = sum(MEASURED[n] for n in ("validate", "download", "preprocess", "compare", "report"))
    bound = chain + (sum(MEASURED.values()) - chain) / 2
    assert by_priority < in_order - 15
    assert by_priority <= bound * 1.02


def test_history_round_trip_merges_and_survives_a_bad_file(tmp_path):
    assert load_history(tmp_path) == {}
    save_history(tmp_path, {"train@gan-0": 38.04, "compare": 5.0})
    save_history(tmp_path, {"train@gan-0": 40.0})
    assert load_history(tmp_path) == {"train@gan-0": 40.0, "compare": 5.0}
    assert not list((tmp_path / HISTORY).parent.glob(".*partial"))
    (tmp_path / HISTORY).write_text("{not json")
    assert load_history(tmp_path) == {}
    (tmp_path / HISTORY).write_text('{"a": "slow", "b": -1, "c": 2}')
    assert load_history(tmp_path) == {"c": 2.0}
