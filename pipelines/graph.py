"""The DVC stage graph, read through DVC's own API and put in run order; never a second copy.

DVC's index graph is a networkx graph; so is ours, with edges turned to point downstream
(upstream stage -> the stage that reads its outputs) and stages named as `dvc repro` takes them.
"""

import os
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from genbench.core.errors import GenbenchError


class GraphError(GenbenchError):
    """dvc.yaml cannot be read, a requested stage is not in it, or the graph has a cycle."""


def read_graph(repo_dir: str | Path) -> nx.DiGraph:
    """Every runnable stage of the DVC project at repo_dir, in dvc.yaml order, with an edge from
    each stage to every stage that reads its outputs.

    Data sources (`dvc add` files) have no command to run and are left out.
    """
    from dvc.exceptions import DvcException  # imported here: DVC costs ~0.5 s to import
    from dvc.repo import Repo

    try:
        with Repo(str(repo_dir)) as repo:
            dvc_graph = repo.index.graph  # edge: stage -> a stage it depends on
            names = {
                stage: address(stage, repo.root_dir)
                for stage in dvc_graph.nodes
                if not stage.is_data_source
            }
            graph = nx.DiGraph()
            for stage, name in names.items():  # node order is declaration order
                # outputs `dvc checkout` does not restore: parallel workers are sent them
                uncached = [
                    os.path.relpath(out.fs_path, repo.root_dir)
                    for out in stage.outs
                    if not out.use_cache
                ]
                # DVC's run cache skips a stage with an uncached out that is not a metric or a
                # plot: parallel runs run such a stage in the main workspace itself
                in_place = any(
                    not out.use_cache and not (out.is_metric or out.is_plot) for out in stage.outs
                )
                graph.add_node(name, uncached=uncached, in_place=in_place)
            graph.add_edges_from(
                (names[dep], names[stage])
                for stage, dep in dvc_graph.edges
                if stage in names and dep in names
            )
            return graph
    except DvcException as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GraphError(f"{repo_dir}: cannot read the DVC graph: {reason}") from None


def address(stage, root: str) -> str:
    """The stage's name as `dvc repro` takes it in root (`train@gan`, `sub/dvc.yaml:x`).

    DVC's own `stage.addressing` is relative to the current directory, not to the repo.
    """
    from dvc.dvcfile import PROJECT_FILE
    from dvc.stage import PipelineStage

    path = os.path.relpath(stage.path, root)
    if not isinstance(stage, PipelineStage):
        return path
    return stage.name if path == PROJECT_FILE else f"{path}:{stage.name}"


def run_order(graph: nx.DiGraph, targets: Iterable[str] | None = None) -> list[str]:
    """Stages in dependency order (upstream first); of the stages ready to run, the one declared
    first in dvc.yaml goes first.

    With targets, only they and their upstream stages, as `dvc repro <targets>` would run.
    """
    keep = set(graph)
    if targets:
        targets = list(targets)
        unknown = [name for name in targets if name not in graph]
        if unknown:
            stages = ", ".join(graph) or "none"
            raise GraphError(f"stage {unknown[0]!r} is not in dvc.yaml; stages: {stages}")
        keep = set(targets).union(*(nx.ancestors(graph, name) for name in targets))
    position = {name: index for index, name in enumerate(graph)}
    try:
        return list(nx.lexicographical_topological_sort(graph.subgraph(keep), key=position.get))
    except nx.NetworkXUnfeasible:
        cycle = [edge[0] for edge in nx.find_cycle(graph.subgraph(keep))]
        raise GraphError(f"the DVC graph has a cycle through: {', '.join(cycle)}") from None


def downstream(graph: nx.DiGraph, name: str) -> list[str]:
    """Every stage that reads `name`'s outputs, directly or not, in dvc.yaml order."""
    below = nx.descendants(graph, name)
    return [stage for stage in graph if stage in below]
