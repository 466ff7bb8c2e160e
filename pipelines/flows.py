"""The `genbench` and `sweep` Prefect flows: one task per DVC stage or grid point.

DVC decides what is up to date: each task runs `dvc repro --single-item <stage>`, and a stage
DVC skips ends in a Completed state named `Skipped` (or `Cached` when DVC restored its outputs
from the run cache), so the UI tells work done from work avoided. A run that succeeds attaches
its headline with links to the report in MLflow (`genbench-headline`), the metric table
(`genbench-metrics`) and what changed since HEAD (`genbench-diff`) as artifacts; every MLflow
run its stages log carries the flow run's URL (`genbench.flow_run_url`), and the flow run is
named after the commit and the execution.

Independent stages run at once, each in its own workspace (`orchestration.workers`, or a Dask
cluster: pipelines/parallel.py), and the flow attaches a timeline of stages per worker
(`genbench-timeline`); with `workers: 1` the stages run one at a time in the workspace itself.
A failed stage's downstream tasks end `NotReady`, unrun; the other branches go on.
"""

import json
import logging
import os
import queue
from pathlib import Path
from typing import Any

import networkx as nx
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Completed, State
from prefect.task_runners import ThreadPoolTaskRunner

from genbench.config.orchestration import OrchestrationParams
from genbench.core.errors import GenbenchError
from genbench.core.system import git_commit
from genbench.schema import validate_params
from genbench.tracking import execution_label
from pipelines import grid, summary, workers
from pipelines.graph import downstream, read_graph, run_order
from pipelines.parallel import STATE_NAMES, Plan, run_parallel, timeline_markdown
from pipelines.repro import (
    StageError,
    absolute_tracking_uri,
    changed_stages,
    dvc_env,
    repro_stage,
    run_dvc,
)

SWEEP_ARTIFACT = "genbench-sweep"
METRICS_ARTIFACT = "genbench-metrics"  # the metric table of a genbench flow run
HEADLINE_ARTIFACT = "genbench-headline"  # its headline, with links to the report in MLflow
DIFF_ARTIFACT = "genbench-diff"  # what changed in the metrics since HEAD (`genbench diff`)
TIMELINE_ARTIFACT = "genbench-timeline"  # stages per worker against time (a parallel run)
COMPARE_FILE = summary.COMPARE_FILE  # what sweeps rank on


class _OneLineErrors(logging.Filter):
    """Prefect logs a failed task or flow with its traceback (20-odd lines of Prefect's own
    frames). Our errors (a stage that failed: its exit and output tail; a bad value) are
    complete in one line, so their records keep the line and drop the traceback; anything
    else (a bug) keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], GenbenchError):
            record.exc_info, record.exc_text = None, None
        return True


for _name in ("prefect.task_runs", "prefect.flow_runs"):
    logging.getLogger(_name).addFilter(_OneLineErrors())


def load_settings(root: Path) -> OrchestrationParams:
    """The `orchestration` section, after checking the whole params file as `make run` does."""
    return validate_params(root / "params.yaml")["orchestration"]


# DVC is the cache here: Prefect's own result caching and persistence stay off.
@task(name="dvc-stage", cache_policy=NO_CACHE, persist_result=False)
def dvc_stage(
    repo: str, stage: str, pipeline_id: str, pull: bool = False, flow_run_url: str | None = None
) -> State:
    """Bring one DVC stage up to date; its output goes to this task's log line by line."""
    logger = get_run_logger()
    env = dvc_env(pipeline_id, flow_run_url=flow_run_url)
    outcome = repro_stage(repo, stage, env, logger.info, pull=pull)
    return Completed(name=STATE_NAMES[outcome], message=f"{stage}: {outcome.value}")


@task(name="dvc-push", cache_policy=NO_CACHE, persist_result=False)
def dvc_push(repo: str) -> None:
    """Send every output to the DVC remote, for the next machine of the pool."""
    run_dvc(["push"], repo, dvc_env(), get_run_logger().info)


def _failure(graph: nx.DiGraph, futures: dict[str, PrefectFuture]) -> str | None:
    """One line for the flow's error: the first failed stage's message and what did not run."""
    # Failed, Crashed or Cancelled; NotReady tasks are the ones a failure held back
    failed = [
        name
        for name, future in futures.items()
        if not future.state.is_completed() and future.state.name != "NotReady"
    ]
    if not failed:
        return None
    # the final state's own result: a Dask future's client may be closed by now
    error = futures[failed[0]].state.result(raise_on_failure=False)
    blocked = [name for name in downstream(graph, failed[0]) if name in futures]
    line = str(error) if isinstance(error, BaseException) else futures[failed[0]].state.message
    if len(failed) > 1:
        line += f"; also failed: {', '.join(failed[1:])}"
    return line + (f"; not run: {', '.join(blocked)}" if blocked else "")


def execution_id() -> str:
    """The MLflow runs of one flow run share this tag (genbench.pipeline_id): the user's
    GENBENCH_PIPELINE_ID, else the flow run's id."""
    return os.environ.get("GENBENCH_PIPELINE_ID") or flow_run.get_id() or "genbench"


def run_name() -> str:
    """A flow run's name: the commit and the execution (`genbench 3f795a0 · 1b2c3d4e`)."""
    commit = git_commit(Path.cwd())[:7]
    return f"genbench {commit} · {execution_label(execution_id())}"


@flow(name="genbench", flow_run_name=run_name, task_runner=ThreadPoolTaskRunner(max_workers=1))
def genbench(
    repo: str = ".", targets: list[str] | None = None, pull: bool = False, push: bool = False
) -> dict[str, str]:
    """Run the DVC graph of `repo`, one task per stage, skipping what DVC finds up to date.

    Args:
        targets: stages to bring up to date with their upstream (default: the whole graph).
        pull: `dvc repro --pull`: fetch unchanged stages' outputs from the DVC remote.
        push: `dvc push` every output when all stages succeeded.
    """
    root = Path(repo).resolve()
    settings = load_settings(root)
    graph = read_graph(root)
    order = run_order(graph, targets)
    pipeline_id, url = execution_id(), flow_run.ui_url
    url = url if url and url.startswith(("http://", "https://")) else None  # ephemeral: no UI
    cores = workers.available_cores()
    slots = [] if settings.cluster else workers.plan(settings.workers, cores, _gpus(settings))
    spans = []
    if settings.cluster or len(slots) > 1:
        where = f"Dask cluster {settings.cluster}" if settings.cluster else "here"
        line = "workers of the cluster" if settings.cluster else workers.describe(slots, cores)
        get_run_logger().info("stages at once: %s, %s", line, where)
        env = dvc_env(pipeline_id, absolute_tracking_uri(root), url)
        extra = {k: v for k, v in env.items() if k.startswith(("GENBENCH_", "MLFLOW_"))}
        plan = Plan(
            root=root,
            graph=graph,
            order=order,
            slots=slots,
            cluster=settings.cluster,
            env=extra,
            uncached={name: graph.nodes[name].get("uncached", []) for name in order},
            retries=settings.retries,
            retry_delay=settings.retry_delay_seconds,
        )
        if pull:  # the workers check out their inputs from the main workspace's cache
            run_dvc(["pull", "--allow-missing"], str(root), dvc_env(), get_run_logger().info)
        futures, spans = run_parallel(plan, changed_stages(root, dvc_env()))
    else:
        futures = _run_serial(root, graph, order, settings, pipeline_id, url, pull)
    for future in futures.values():
        future.wait()
    error = _failure(graph, futures)
    if error:
        raise StageError(error)
    if push:
        dvc_push.with_options(retries=settings.retries)(str(root))
    attach_results(root, pipeline_id)
    timeline = timeline_markdown(spans)
    if timeline:
        create_markdown_artifact(
            timeline, key=TIMELINE_ARTIFACT, description="Stages per worker against time"
        )
    outcomes = {state_name: outcome.value for outcome, state_name in STATE_NAMES.items()}
    stage_outcomes = {name: outcomes[future.state.name] for name, future in futures.items()}
    line = "; ".join(f"{k} {v}" for k, v in stage_outcomes.items())
    get_run_logger().info("stages: %s", line)
    return stage_outcomes


def _gpus(settings: OrchestrationParams) -> int:
    """CUDA devices to deal out: only when a worker count is left to `auto` or above 1."""
    return workers.cuda_devices() if settings.workers != 1 else 0


def _run_serial(
    root: Path,
    graph: nx.DiGraph,
    order: list[str],
    settings: OrchestrationParams,
    pipeline_id: str,
    url: str | None,
    pull: bool,
) -> dict[str, PrefectFuture]:
    """One stage at a time in the workspace itself (`workers: 1`), in dependency order."""
    stage_task = dvc_stage.with_options(
        retries=settings.retries, retry_delay_seconds=settings.retry_delay_seconds
    )
    futures: dict[str, PrefectFuture] = {}
    for name in order:
        upstream = [futures[up] for up in graph.predecessors(name)]
        futures[name] = stage_task.with_options(task_run_name=name).submit(
            str(root), name, pipeline_id, pull, url, wait_for=upstream
        )
    return futures


def attach_results(root: Path, pipeline_id: str) -> None:
    """What this flow run made, as artifacts (UI: the run's Artifacts tab), from the outputs as
    they are now: the headline (`genbench-headline`) with links into MLflow (the report run's
    artifacts, the experiment) when the store has a web address, the metric table, and the
    change since HEAD (`genbench diff`). Missing outputs are left out."""
    headline = summary.headline_markdown(root)
    record = summary.report_run(root, pipeline_id)
    if headline:
        links = summary.mlflow_links(record)
        create_markdown_artifact(
            headline + "\n\n" + links,
            key=HEADLINE_ARTIFACT,
            description=f"The comparison's headline (execution {pipeline_id})",
        )
    table = summary.metrics_markdown(root)
    if table:
        create_markdown_artifact(table, key=METRICS_ARTIFACT, description=f"Metric table of {root}")
    change = summary.diff_markdown(root)
    if change:
        create_markdown_artifact(
            change, key=DIFF_ARTIFACT, description="What changed since HEAD (genbench diff)"
        )


@task(name="dvc-experiment", cache_policy=NO_CACHE, persist_result=False)
def experiment(
    repo: str, name: str, options: list[str], tracking_uri: str, slots: queue.Queue | None = None
) -> dict[str, Any]:
    """`dvc exp run --temp -n name -S ...`: one grid point; returns its DVC metrics. It holds
    a worker slot of `slots` (its threads and device) while it runs."""
    import dvc.api

    env = dvc_env(pipeline_id=name, tracking_uri=tracking_uri)
    slot = slots.get() if slots is not None else None
    try:
        logger = get_run_logger()
        if slot is not None:
            env |= slot.env()
            logger.info("%s", slot.describe())
        run_dvc(["exp", "run", "--temp", "-n", name, *options], repo, env, logger.info)
    finally:
        if slot is not None:
            slots.put(slot)
    metrics = dvc.api.metrics_show(repo=repo, rev=name)
    # dvc.api.metrics_show leaves compare.json out (it holds lists and text beside numbers),
    # and the sweep ranks on its validation means: read it whole from the experiment's commit.
    compare = json.loads(dvc.api.read(COMPARE_FILE, repo=repo, rev=name))
    return {**metrics, f"{COMPARE_FILE}:": compare}


@flow(name="sweep")
def sweep(
    repo: str = ".", overrides: list[str] | None = None, metrics: list[str] | None = None
) -> list[dict[str, Any]]:
    """One DVC experiment per point of a grid of `dvc exp run -S` overrides, and a table.

    Args:
        overrides: `key=v1,v2` overrides (default: orchestration.sweep.grid in params.yaml).
        metrics: metric names for the table (default: orchestration.sweep.metrics).
    """
    root = Path(repo).resolve()
    settings = load_settings(root)
    points = grid.expand(grid.parse_grid(overrides or settings.sweep.grid))
    grid.check_points(root / "params.yaml", points)  # every point valid before any training
    wanted = metrics or settings.sweep.metrics
    named = [(point_name(i), point) for i, point in enumerate(points, start=1)]
    states = run_points(root, settings, named)
    rows, failed = [], []
    for index, (point, state) in enumerate(zip(points, states, strict=True), start=1):
        name = point_name(index)
        values = state.result(raise_on_failure=False) if state.is_completed() else {}
        if not state.is_completed():
            failed.append(f"{name} ({grid.describe(point)})")
        row = {"experiment": name, "status": "ok" if state.is_completed() else "failed"}
        row |= {key: text for key, _, text in point}
        rows.append({**row, **grid.flatten_metrics(values or {}, wanted)})
    ranked_by = grid.rank(rows, [key for key, _, _ in points[0]] if points else [], wanted)
    _publish(rows, failed, ranked_by)
    if failed:
        raise StageError(f"sweep: {len(failed)} of {len(points)} points failed: {failed[0]}")
    return rows


def run_points(
    root: Path, settings: OrchestrationParams, named: list[tuple[str, grid.Point]]
) -> list[State]:
    """Each (experiment name, point) as a `dvc exp run --temp` of its own (a temporary copy of
    the project), up to `workers` side by side, each holding a worker slot (threads, device);
    their final states, in order."""
    point_task = experiment.with_options(
        retries=settings.retries, retry_delay_seconds=settings.retry_delay_seconds
    )
    slots = workers.plan(settings.workers, workers.available_cores(), _gpus(settings))
    free: queue.Queue[workers.Slot] = queue.Queue()  # a device is held by one point at a time
    for slot in slots:
        free.put(slot)
    uri = absolute_tracking_uri(root)
    with ThreadPoolTaskRunner(max_workers=len(slots)) as pool:
        futures = [
            pool.submit(
                point_task.with_options(task_run_name=f"{name} {grid.describe(point)}"),
                {
                    "repo": str(root),
                    "name": name,
                    "options": grid.set_options(point),
                    "tracking_uri": uri,
                    "slots": free,
                },
            )
            for name, point in named
        ]
        return [future.wait() or future.state for future in futures]


def point_name(tail: int | str) -> str:
    """`<flow run name>-<tail>` (a sweep's point index, an ablation's option); a retried flow
    run adds its attempt (`-r2`), since DVC refuses to save an experiment under a name it
    already has.
    """
    name = flow_run.get_name() or "sweep"
    attempt = flow_run.get_run_count() or 1
    return f"{name}-{tail}" if attempt <= 1 else f"{name}-r{attempt}-{tail}"


def _publish(rows: list[dict[str, Any]], failed: list[str], ranked_by: str) -> None:
    """The table of metrics per point, best first: in the log, on stdout, as a flow artifact."""
    columns, cells = grid.table(rows)
    text = grid.markdown(columns, cells)
    order = ranking_note(ranked_by)
    get_run_logger().info("sweep results (%s):\n%s", order, text)
    status = f"; failed: {', '.join(failed)}" if failed else ""
    create_table_artifact(
        table=[dict(zip(columns, row, strict=True)) for row in cells],
        key=SWEEP_ARTIFACT,
        description=f"Metrics per grid point, one DVC experiment each, {order}{status}",
    )


def ranking_note(ranked_by: str) -> str:
    """How the sweep's rows are ordered (said with the table)."""
    if not ranked_by:
        return "in grid order (no validation metric to rank by)"
    return f"ranked by {ranked_by}: the validation split, mean over seeds; never the test split"
