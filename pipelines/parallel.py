"""Independent stages at once: each ready stage a Prefect task in its own workspace, one writer.

The flow walks the graph as stages finish. A stage whose code, data and params DVC finds
unchanged, with every upstream stage unchanged too, ends `Skipped` without a worker. Any other
stage, once its upstream stages are done, goes to a free worker as a task (up to
`orchestration.workers` here, or any worker of the Dask cluster at `orchestration.cluster`),
the one with the longest expected work below it first (pipelines/schedule.py): it runs
`dvc repro --single-item` in its own workspace (pipelines/workspace.py) on the main
workspace's dvc.lock of that moment, which tells `Completed` (it ran), `Cached` (restored from
the run cache) and `Skipped` (its upstream's new outputs were the old ones) apart. The main
workspace then restores the stage from the run cache, so only the main workspace ever writes
dvc.lock; a freed worker gets its next stage before that restore. A stage with nothing to run
beside it (the validate -> preprocess chain, compare) runs in the main workspace itself, with a
worker's threads: no worktree to fill, nothing to restore. A failed stage does not stop the
others; its downstream ends `NotReady`.
"""

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Completed, State
from prefect.task_runners import ThreadPoolTaskRunner

from pipelines import schedule, workspace
from pipelines.repro import Outcome, dvc_env, repro_stage, run_dvc
from pipelines.workers import Slot

STATE_NAMES = {Outcome.RAN: "Completed", Outcome.UP_TO_DATE: "Skipped", Outcome.RESTORED: "Cached"}
OUTCOMES = {name: outcome for outcome, name in STATE_NAMES.items()}
MAIN_WORKSPACE = "main workspace"  # where a stage with nothing beside it runs (the timeline's row)


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
    """A stage in the main workspace itself: one DVC's run cache cannot hand back (an uncached
    out that is not a metric: the report), or one with nothing else to run beside it."""
    start = time.time()
    outcome = repro_stage(root, stage, {**dvc_env(), **env}, get_run_logger().info)
    name = STATE_NAMES[outcome]
    span = Span(stage, MAIN_WORKSPACE, start, time.time(), name)
    return Completed(name=name, message=f"{stage}: {outcome.value} ({MAIN_WORKSPACE})", data=span)


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

    `changed`: the stages `dvc status` finds changed in the main workspace before the run.
    Of the stages ready at once, the one with the longest expected work below it goes first
    (pipelines/schedule.py); the durations of the stages that ran join the history."""
    run = _Run(plan, changed)
    init_tracking_store(plan.env.get("MLFLOW_TRACKING_URI", ""))
    try:
        with run.here, _workers(plan, run.here) as runner:
            run.runner = runner
            if changed and not plan.cluster:  # made while the first stages run in main
                run.make_worktrees()
            run.loop()
    finally:
        run.making.shutdown(wait=True)  # none half-made when they are removed
        if not plan.cluster:
            workspace.remove_all_worktrees(plan.root)
        schedule.save_history(plan.root, run.measured)
    futures = run.futures
    return {name: futures[name] for name in plan.order if name in futures}, run.spans


class _Run:
    """One parallel run's state; only the flow's own thread touches it (no locks)."""

    def __init__(self, plan: Plan, changed: set[str]) -> None:
        self.plan, self.changed = plan, changed
        self.logger = get_run_logger()
        self.commit = workspace.git(["rev-parse", "HEAD"], plan.root).strip()
        self.patch = workspace.working_tree_patch(plan.root)
        self.stage_task = worker_stage.with_options(
            retries=plan.retries, retry_delay_seconds=plan.retry_delay
        )
        self.futures: dict[str, PrefectFuture] = {}
        self.outcomes: dict[str, Outcome] = {}  # done, and restored in the main workspace
        self.failed: set[str] = set()
        self.running: dict[PrefectFuture, int | None] = {}  # a future -> the slot it holds
        self.unrestored: list[tuple[Span, Outcome]] = []  # done by a worker, not restored yet
        self.free = [slot.index for slot in plan.slots]
        self.spans: list[Span] = []
        self.measured: dict[str, float] = {}  # seconds of the stages that ran
        self.in_main: set[str] = set()  # stages run in the main workspace: nothing to restore
        self.history = schedule.load_history(plan.root)
        self.pending = list(plan.order)
        self.main_env = {**dvc_env(), **plan.env}
        # Up-to-date stages and NotReady ones take a thread here, never a worker.
        self.here = ThreadPoolTaskRunner(max_workers=len(plan.slots) + 4)
        self.runner = self.here
        self.making = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genbench-worktrees")
        self.worktrees: Future | None = None  # the workers' worktrees, once asked for

    def make_worktrees(self) -> Future:
        """The local workers' worktrees, made in a thread: ask once, wait later."""
        if self.worktrees is None:
            args = (self.plan.root, self.plan.slots, self.commit, self.patch)
            self.worktrees = self.making.submit(_make_worktrees, *args)
        return self.worktrees

    def loop(self) -> None:
        """Start what can start, restore what a worker finished, wait for the next to end."""
        while self.pending or self.running or self.unrestored:
            self.dispatch()
            if self.unrestored:  # after the dispatch: a freed worker never waits for a restore
                span, outcome = self.unrestored.pop(0)
                _restore(self.plan, span, self.main_env, self.logger.info)
                self.outcomes[span.stage] = outcome
                continue
            if not self.running:  # cannot happen in a DAG: a bug, not a hang
                raise RuntimeError(f"no stage can start: {', '.join(self.pending)}")
            self.collect(next(as_completed(list(self.running))))
        for future in self.futures.values():  # NotReady ones too, before the runners close
            future.wait()

    def dispatch(self) -> None:
        """Submit every stage that can start now, the highest priority first."""
        graph, plan = self.plan.graph, self.plan
        ready = []
        for name in list(self.pending):
            upstream = list(graph.predecessors(name))
            blocked = [self.futures[up] for up in upstream if up in self.failed]
            if blocked:  # Prefect ends it NotReady, unrun
                self.futures[name] = self.here.submit(
                    self.stage_task.with_options(task_run_name=name, retries=0),
                    {"job": None, "root": None, "slot": None},
                    wait_for=blocked,
                )
                self.failed.add(name)
                self.pending.remove(name)
            elif all(up in self.outcomes for up in upstream):
                if name not in self.changed and all(
                    self.outcomes[up] is Outcome.UP_TO_DATE for up in upstream
                ):
                    self._submit(name, unchanged_stage, {"stage": name}, None)
                else:
                    ready.append(name)
        if not ready:
            return
        rank = schedule.priorities(graph, self.history | self.measured)
        # alone: nothing else to run or restore, so it runs in the main workspace itself (no
        # worktree to fill, nothing to restore): the validate -> preprocess chain, compare
        alone = (
            len(ready) == 1
            and not self.unrestored
            and not plan.cluster
            and all(slot is None for slot in self.running.values())
            and set(self.pending) - set(ready) <= nx.descendants(graph, ready[0])
        )
        for name in sorted(ready, key=rank.get):
            if not (plan.cluster or self.free):
                return
            slot = None if plan.cluster else self.free.pop(0)
            if graph.nodes[name].get("in_place") or alone:
                env = {**plan.env, **(plan.slots[slot].env() if slot is not None else {})}
                task_ = main_stage.with_options(
                    retries=plan.retries, retry_delay_seconds=plan.retry_delay
                )
                params = {"root": str(plan.root), "stage": name, "env": env}
                self._submit(name, task_, params, slot)
                self.in_main.add(name)
                continue
            if not plan.cluster:
                self.make_worktrees().result()  # made by now, or their WorkspaceError here
            upstream = list(graph.predecessors(name))
            job = _job(plan, name, upstream, self.commit, self.patch, slot)
            if plan.cluster and upstream:  # the DVC remote must hold its inputs
                run_dvc(["push", "--quiet", *upstream], plan.root, self.main_env, self.logger.info)
            root = None if plan.cluster else str(plan.root)
            params = {"job": job, "root": root, "slot": slot}
            self._submit(name, self.stage_task, params, slot, self.runner)

    def _submit(self, name: str, task_, params: dict, slot: int | None, runner=None) -> None:
        """Submit a stage's task (to the thread pool here unless `runner`), holding `slot`."""
        runner = runner or self.here
        self.futures[name] = runner.submit(task_.with_options(task_run_name=name), params)
        self.running[self.futures[name]] = slot
        self.pending.remove(name)

    def collect(self, done: PrefectFuture) -> None:
        """A stage ended: free its worker; queue its restore, or record why it did not."""
        done.wait()  # its final state (as_completed may come before the state is read)
        slot = self.running.pop(done)
        if slot is not None:
            self.free.append(slot)
        name = next(n for n, f in self.futures.items() if f is done)
        if not done.state.is_completed():
            self.failed.add(name)
            return
        span = done.result()
        self.spans.append(span)
        outcome = OUTCOMES[done.state.name]
        if outcome is Outcome.RAN:
            self.measured[name] = span.end - span.start
        if outcome is not Outcome.UP_TO_DATE and name not in self.in_main:
            self.unrestored.append((span, outcome))
        else:
            self.outcomes[name] = outcome


def _make_worktrees(root: Path, slots: list[Slot], commit: str, patch: str) -> None:
    for slot in slots:
        workspace.make_worktree(root, slot.index, commit, patch)


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
