"""Independent stages at once: each ready stage a Prefect task in its own workspace, one writer.

The flow walks the graph as stages finish. A stage whose code, data and params DVC finds
unchanged, with every upstream stage unchanged too, ends `Skipped` without a worker. Any other
stage, once its upstream stages are done, goes to a free worker as a task (up to
`orchestration.workers` here, or any worker of the Dask cluster at `orchestration.cluster`): it
runs `dvc repro --single-item` in its own workspace (pipelines/workspace.py) on the main
workspace's dvc.lock of that moment, which tells `Completed` (it ran), `Cached` (restored from
the run cache) and `Skipped` (its upstream's new outputs were the old ones) apart. The main
workspace then restores the stage from the run cache, so only the main workspace ever writes
dvc.lock. A failed stage does not stop the others; its downstream ends `NotReady`.
"""

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Completed, State
from prefect.task_runners import ThreadPoolTaskRunner

from pipelines import workspace
from pipelines.repro import Outcome, dvc_env, repro_stage, run_dvc
from pipelines.workers import Slot

STATE_NAMES = {Outcome.RAN: "Completed", Outcome.UP_TO_DATE: "Skipped", Outcome.RESTORED: "Cached"}
OUTCOMES = {name: outcome for outcome, name in STATE_NAMES.items()}


@dataclass(frozen=True)
class Span:
    """Where and when a stage ran (the timeline artifact's rows)."""

    stage: str
    worker: str
    start: float
    end: float
    state: str
    # its `cache: false` outputs as the worker wrote them: DVC's run cache restores a stage
    # only when these are already in place, so the main workspace writes them first
    outputs: dict[str, bytes] = field(default_factory=dict, repr=False)


@task(name="dvc-stage", cache_policy=NO_CACHE, persist_result=False)
def worker_stage(job: workspace.Job, root: str | None, slot: int | None) -> State:
    """One stage in a worker's workspace: a worktree of `root` (slot's), or this Dask worker's
    clone (root None). Returns a state named Completed, Cached or Skipped, carrying its Span."""
    logger = get_run_logger()
    start = time.time()
    env = dvc_env()
    if root is not None:
        path = Path(root) / workspace.WORKTREES / str(slot)
        where = f"worker {slot}"
        outcome = workspace.run_in_worktree(Path(root), path, job, env, logger.info)
    else:
        path = workspace.worker_clone()
        where = _dask_worker_name(path)
        outcome = workspace.run_in_clone(path, job, env, logger.info)
    name = STATE_NAMES[outcome]
    made = {} if outcome is Outcome.UP_TO_DATE else workspace.uncached_files(path, job.outputs)
    span = Span(job.stage, where, start, time.time(), name, made)
    return Completed(name=name, message=f"{job.stage}: {outcome.value} ({where})", data=span)


@task(name="dvc-stage", cache_policy=NO_CACHE, persist_result=False)
def main_stage(root: str, stage: str, env: dict[str, str]) -> State:
    """A stage DVC's run cache cannot hand back (an uncached out that is not a metric: the
    report): it runs in the main workspace itself."""
    start = time.time()
    outcome = repro_stage(root, stage, {**dvc_env(), **env}, get_run_logger().info)
    name = STATE_NAMES[outcome]
    span = Span(stage, "main", start, time.time(), name)
    return Completed(name=name, message=f"{stage}: {outcome.value} (main workspace)", data=span)


@task(name="dvc-stage", cache_policy=NO_CACHE, persist_result=False)
def unchanged_stage(stage: str) -> State:
    """A stage DVC finds up to date, with all its upstream: nothing to run anywhere."""
    get_run_logger().info(
        "Stage '%s' didn't change, skipping: `dvc status` found it and every stage upstream "
        "of it unchanged (code, data and params as in dvc.lock)",
        stage,
    )
    now = time.time()
    span = Span(stage, "main", now, now, "Skipped")
    return Completed(name="Skipped", message=f"{stage}: {Outcome.UP_TO_DATE.value}", data=span)


def _dask_worker_name(clone: Path) -> str:
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        return f"{get_worker().name} ({clone})"
    return str(clone)


@dataclass
class Plan:
    """One parallel run's fixed inputs."""

    root: Path
    graph: nx.DiGraph
    order: list[str]
    slots: list[Slot]  # here; empty on a cluster
    cluster: str | None
    env: dict[str, str]  # every stage's: execution id, flow run URL, MLflow store (absolute)
    uncached: dict[str, list[str]]  # stage -> its `cache: false` outputs
    retries: int
    retry_delay: int


def run_parallel(plan: Plan, changed: set[str]) -> tuple[dict[str, PrefectFuture], list[Span]]:
    """Run plan.order's stages, each as soon as its upstream stages are done; returns each
    stage's future (in order) and where the stages ran.

    `changed`: the stages `dvc status` finds changed in the main workspace before the run."""
    logger = get_run_logger()
    root, graph = plan.root, plan.graph
    commit = workspace.git(["rev-parse", "HEAD"], root).strip()
    patch = workspace.working_tree_patch(root)
    stage_task = worker_stage.with_options(
        retries=plan.retries, retry_delay_seconds=plan.retry_delay
    )
    futures: dict[str, PrefectFuture] = {}
    outcomes: dict[str, Outcome] = {}
    failed: set[str] = set()
    running: dict[PrefectFuture, int | None] = {}  # a future -> the slot it holds
    free = [slot.index for slot in plan.slots]
    spans: list[Span] = []
    main_env = {**dvc_env(), **plan.env}
    pending = list(plan.order)
    # Up-to-date stages and NotReady ones take a thread here, never a worker.
    here = ThreadPoolTaskRunner(max_workers=len(plan.slots) + 4)
    init_tracking_store(plan.env.get("MLFLOW_TRACKING_URI", ""))
    try:
        with here, _workers(plan, here) as runner:
            if not plan.cluster:
                for index in free:
                    workspace.make_worktree(root, index, commit, patch)
            while pending or running:
                before = len(pending)
                for name in list(pending):
                    upstream = list(graph.predecessors(name))
                    blocked = [futures[up] for up in upstream if up in failed]
                    ready = all(up in outcomes for up in upstream)
                    unchanged = name not in changed and all(
                        outcomes.get(up) is Outcome.UP_TO_DATE for up in upstream
                    )
                    if blocked:  # Prefect ends it NotReady, unrun
                        futures[name] = here.submit(
                            stage_task.with_options(task_run_name=name, retries=0),
                            {"job": None, "root": None, "slot": None},
                            wait_for=blocked,
                        )
                        failed.add(name)
                    elif ready and unchanged:
                        futures[name] = here.submit(
                            unchanged_stage.with_options(task_run_name=name), {"stage": name}
                        )
                        running[futures[name]] = None
                    elif ready and graph.nodes[name].get("in_place") and (plan.cluster or free):
                        slot = None if plan.cluster else free.pop(0)
                        env = {**plan.env, **(plan.slots[slot].env() if slot is not None else {})}
                        futures[name] = here.submit(
                            main_stage.with_options(
                                task_run_name=name,
                                retries=plan.retries,
                                retry_delay_seconds=plan.retry_delay,
                            ),
                            {"root": str(root), "stage": name, "env": env},
                        )
                        running[futures[name]] = slot
                    elif ready and (plan.cluster or free):
                        slot = None if plan.cluster else free.pop(0)
                        job = _job(plan, name, upstream, commit, patch, slot)
                        if plan.cluster and upstream:  # the DVC remote must hold its inputs
                            run_dvc(["push", "--quiet", *upstream], root, main_env, logger.info)
                        params = {"job": job, "root": None, "slot": slot}
                        if not plan.cluster:
                            params["root"] = str(root)
                        futures[name] = runner.submit(
                            stage_task.with_options(task_run_name=name), params
                        )
                        running[futures[name]] = slot
                    else:
                        continue
                    pending.remove(name)
                if not running:
                    if len(pending) == before:  # cannot happen in a DAG: a bug, not a hang
                        raise RuntimeError(f"no stage can start: {', '.join(pending)}")
                    continue
                done = next(as_completed(list(running)))
                done.wait()  # its final state (as_completed may come before the state is read)
                slot = running.pop(done)
                if slot is not None:
                    free.append(slot)
                name = next(n for n, f in futures.items() if f is done)
                if not done.state.is_completed():
                    failed.add(name)
                    continue
                span = done.result()
                spans.append(span)
                outcome = OUTCOMES[done.state.name]
                if outcome is not Outcome.UP_TO_DATE and span.worker != "main":
                    _restore(plan, span, main_env, logger.info)
                outcomes[name] = outcome
            for future in futures.values():  # NotReady ones too, before the runners close
                future.wait()
    finally:
        if not plan.cluster:
            workspace.remove_all_worktrees(root)
    return {name: futures[name] for name in plan.order if name in futures}, spans


def init_tracking_store(uri: str) -> None:
    """Create a new sqlite MLflow store's tables before stages start at once: two stages that
    both find no tables race to create them, and one fails (`table ... already exists`)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix) :]).exists():
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=uri).search_experiments()


def _workers(plan: Plan, here: ThreadPoolTaskRunner):
    """The runner of the jobs: the thread pool here, or a Dask cluster's client."""
    if not plan.cluster:
        return contextlib.nullcontext(here)
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=plan.cluster)


def _job(
    plan: Plan, name: str, upstream: list[str], commit: str, patch: str, slot: int | None
) -> workspace.Job:
    """A stage's job, with the main workspace's dvc.lock and upstream uncached files of now."""
    files = [path for up in upstream for path in plan.uncached.get(up, [])]
    lock = plan.root / workspace.LOCK
    env = dict(plan.env)
    if slot is not None:
        env |= plan.slots[slot].env()
    return workspace.Job(
        stage=name,
        upstream=upstream,
        commit=commit,
        patch=patch,
        lock=lock.read_text() if lock.exists() else None,
        uncached=workspace.uncached_files(plan.root, files),
        outputs=plan.uncached.get(name, []),
        env=env,
    )


def _restore(plan: Plan, span: Span, env: dict[str, str], on_line) -> None:
    """Bring a stage a worker ran (or restored) into the main workspace from the run cache,
    its `cache: false` outputs written first."""
    name = span.stage
    folders = [path for path in plan.uncached.get(name, []) if (plan.root / path).is_dir()]
    workspace.write_files(plan.root, span.outputs, replace=folders)
    if plan.cluster:  # here, the worker's DVC put them in the shared cache itself
        workspace.store_in_cache(plan.root, span.outputs)
        run_dvc(["fetch", "--quiet", "--run-cache"], plan.root, env, on_line)
    outcome = repro_stage(plan.root, name, env, on_line, pull=bool(plan.cluster))
    if outcome is Outcome.RAN:
        on_line(f"{name}: not in the run cache, so it ran again in the main workspace")


def timeline_markdown(spans: list[Span], width: int = 40) -> str:
    """Stages per worker against time, as a Markdown table with a bar per stage."""
    worked = [span for span in spans if span.worker != "main"]
    if not worked:
        return ""
    t0 = min(span.start for span in worked)
    total = max(span.end for span in worked) - t0 or 1.0
    lines = [
        f"Stages per worker, {total:.0f} s from the first start to the last end "
        f"({len(worked)} stages on {len({s.worker for s in worked})} worker(s)).",
        "",
        "| worker | stage | state | start (s) | seconds | timeline |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for span in sorted(worked, key=lambda s: (s.worker, s.start)):
        lead = int((span.start - t0) / total * width)
        bar = max(1, int((span.end - span.start) / total * width))
        cells = [
            span.worker,
            span.stage,
            span.state,
            f"{span.start - t0:.0f}",
            f"{span.end - span.start:.0f}",
            "`" + "·" * lead + "█" * bar + "·" * max(0, width - lead - bar) + "`",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
