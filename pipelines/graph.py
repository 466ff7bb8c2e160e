"""The DVC stage graph, read through DVC's own API and put in run order; never a second copy."""

import os
from collections.abc import Iterable
from pathlib import Path

from genbench.errors import GenbenchError

# stage address (`train@gan`) -> the stages whose outputs it reads, in dvc.yaml order
Graph = dict[str, tuple[str, ...]]


class GraphError(GenbenchError):
    """dvc.yaml cannot be read, or a requested stage is not in it."""


def read_graph(repo_dir: str | Path) -> Graph:
    """Every runnable stage of the DVC project at repo_dir with its upstream stages.

    DVC's index graph has an edge from each stage to the stages it depends on. Data sources
    (`dvc add` files) have no command to run and are left out.
    """
    from dvc.exceptions import DvcException  # imported here: DVC costs ~0.5 s to import
    from dvc.repo import Repo

    try:
        with Repo(str(repo_dir)) as repo:
            graph = repo.index.graph
            runnable = [stage for stage in graph.nodes if not stage.is_data_source]
            return {
                address(stage, repo.root_dir): tuple(
                    address(dep, repo.root_dir)
                    for dep in graph.successors(stage)
                    if not dep.is_data_source
                )
                for stage in runnable
            }
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


def upstream_closure(graph: Graph, targets: Iterable[str]) -> set[str]:
    """The targets and every stage they depend on, directly or not."""
    targets = list(targets)
    unknown = [name for name in targets if name not in graph]
    if unknown:
        raise GraphError(
            f"stage {unknown[0]!r} is not in dvc.yaml; stages: {', '.join(graph) or 'none'}"
        )
    seen: set[str] = set()
    todo = list(targets)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def run_order(graph: Graph, targets: Iterable[str] | None = None) -> list[str]:
    """Stages in dependency order (upstream first), ties kept in dvc.yaml order.

    With targets, only they and their upstream stages, as `dvc repro <targets>` would run.
    """
    keep = upstream_closure(graph, targets) if targets else set(graph)
    order: list[str] = []
    done: set[str] = set()
    pending = [name for name in graph if name in keep]
    while pending:
        ready = [name for name in pending if done.issuperset(graph[name])]
        if not ready:
            raise GraphError(f"the DVC graph has a cycle through: {', '.join(pending)}")
        order.extend(ready)
        done.update(ready)
        pending = [name for name in pending if name not in done]
    return order


def downstream(graph: Graph, name: str) -> list[str]:
    """Every stage that reads `name`'s outputs, directly or not, in dvc.yaml order."""
    hit = {name}
    for stage in run_order(graph):
        if hit.intersection(graph[stage]):
            hit.add(stage)
    return [stage for stage in graph if stage in hit and stage != name]
