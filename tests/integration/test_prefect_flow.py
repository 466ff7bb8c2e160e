"""The Prefect flows on a tiny copy of the project, against a real `prefect server` (no mocks).

One module-scoped copy of the session's tiny graph (already run once by `dvc repro`): the tests
run in file order and build on each other (a run that reruns one family's chain and skips the
rest, all up to date, ephemeral mode under CPU load, the served deployment, a work pool, a
failing stage, a sweep).
"""

import os
import sqlite3
import subprocess
from datetime import datetime

import pytest

from pipelines.graph import downstream, read_graph
from tests.integration.conftest import BIN, copy_tree, set_params
from tests.integration.prefect_fixtures import (
    api,
    base_env,
    commit,
    flow_run_id,
    run_module,
    running_server,
    start,
    stop,
    task_runs,
)
from tests.integration.processes import busy_cpus


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    yield from running_server(tmp_path_factory.mktemp("prefect-server"))


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_graph):
    """A committed copy of the tiny graph (TINY params, two seeds), two workers, no retries."""
    root = copy_tree(tiny_graph.root, tmp_path_factory.mktemp("flow") / "repo")
    # two workers, whatever the cores: stages at once (test_parallel_flow.py checks their outputs)
    set_params(root, {"orchestration": {"retries": 0, "retry_delay_seconds": 0, "workers": 2}})
    commit(root, "tiny")
    return root


@pytest.fixture(scope="module")
def stages(project) -> set[str]:
    """The expected task names, read from DVC like the flow does."""
    return set(read_graph(project))


def client_env(project, server) -> dict:
    """The server's client environment, with the copy's own genbench code for the stages."""
    return {**server.env, "PYTHONPATH": str(project / "src")}


def check(result) -> str:
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


def mlflow_runs(project, tag_value: str) -> list[tuple]:
    """(run name, status) of the MLflow runs tagged genbench.pipeline_id = tag_value."""
    with sqlite3.connect(project / "mlflow.db") as db:
        return db.execute(
            "SELECT runs.name, runs.status FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid "
            "WHERE tags.key = 'genbench.pipeline_id' AND tags.value = ?",
            (tag_value,),
        ).fetchall()


def flow_run_urls(project, tag_value: str) -> list[str]:
    """genbench.flow_run_url of the MLflow runs tagged genbench.pipeline_id = tag_value."""
    with sqlite3.connect(project / "mlflow.db") as db:
        return [
            url
            for (url,) in db.execute(
                "SELECT u.value FROM tags AS p JOIN tags AS u ON u.run_uuid = p.run_uuid "
                "WHERE p.key = 'genbench.pipeline_id' AND p.value = ? "
                "AND u.key = 'genbench.flow_run_url'",
                (tag_value,),
            )
        ]


def test_flow_runs_one_task_per_dvc_stage(project, stages, prefect_server):
    """New GAN params: the GAN chain runs, every other stage is a `Skipped` task of the run."""
    set_params(project, {"gan": {"lr_g": 0.0004}})
    out = check(
        run_module(
            "pipelines.run", ["--repo", project], project, client_env(project, prefect_server)
        )
    )
    run_id = flow_run_id(out)
    assert api(prefect_server, f"/flow_runs/{run_id}")["state"]["type"] == "COMPLETED"
    runs = task_runs(prefect_server, run_id)
    assert set(runs) == stages
    graph, when = read_graph(project), datetime.fromisoformat
    trains = {"train@gan-0", "train@gan-1"}
    rerun = trains | {name for train in trains for name in downstream(graph, train)}
    rerun.add("validate")  # first in the graph: it reruns whenever params.yaml changes
    assert {"evaluate@gan-0", "evaluate@gan-1", "report"} <= rerun < stages
    states = {name: (run["state"]["type"], run["state"]["name"]) for name, run in runs.items()}
    assert {states[name] for name in rerun} == {("COMPLETED", "Completed")}
    assert {states[name] for name in stages - rerun} == {("COMPLETED", "Skipped")}
    for name, run in runs.items():  # each stage started after all its upstream stages ended
        upstream = graph.predecessors(name)
        assert all(when(runs[up]["end_time"]) <= when(run["start_time"]) for up in upstream)
    logs = api(
        prefect_server,
        "/logs/filter",
        {"logs": {"task_run_id": {"any_": [runs["train@gan-0"]["id"]]}}},
    )
    text = "\n".join(log["message"] for log in logs)
    assert (
        "Running stage 'train@gan-0'" in text and "train@gan-0: " in text
    )  # DVC's and the stage's
    # The MLflow runs of this execution are grouped under the flow run's id
    named = sorted(name for name, _ in mlflow_runs(project, run_id))
    assert all(name.endswith(f" · {run_id[:8]}") for name in named)  # the flow run's uuid
    models = ["gan-seed0", "gan-seed1"]  # the runs of the stages that ran, none of the rest
    expected = ["compare", *models, *(f"eval {model}" for model in models), "report"]
    assert [name.split(" · ")[0] for name in named] == sorted(expected)
    # every one links back to the flow run
    urls = flow_run_urls(project, run_id)
    assert len(urls) == len(named) and all(url.endswith(run_id) for url in urls)
    # the headline and the metric table, as artifacts of this flow run
    found = api(prefect_server, "/artifacts/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
    by_key = {artifact["key"]: artifact["data"] for artifact in found}
    assert set(by_key) == {
        "genbench-metrics",
        "genbench-headline",
        "genbench-diff",
        "genbench-timeline",  # stages per worker
    }
    # what changed since the commit (`genbench diff`): the GAN's retrained numbers
    assert by_key["genbench-diff"].startswith("## Change since HEAD (")
    assert "| metrics/runs/gan-0.json | scores.fid |" in by_key["genbench-diff"]
    assert all(f"| {family} |" in by_key["genbench-metrics"] for family in ("gan", "vae", "ddpm"))
    headline = by_key["genbench-headline"]
    assert headline.startswith("## Headline") and "**FID**" in headline
    # the report run of this execution, in this project's mlflow.db (no web address: how to
    # open it)
    assert "mlflow ui --backend-store-uri sqlite:///" in headline


@pytest.mark.slow  # suite time; the outcome of each stage: tests/unit/test_pipelines_graph.py
def test_second_run_reports_every_stage_up_to_date(project, stages, prefect_server):
    result = run_module(
        "pipelines.run", ["--repo", project], project, client_env(project, prefect_server)
    )
    runs = task_runs(prefect_server, flow_run_id(check(result)))
    assert set(runs) == stages
    assert {(run["state"]["type"], run["state"]["name"]) for run in runs.values()} == {
        ("COMPLETED", "Skipped")
    }
    assert result.stdout.count(": up to date") == len(stages)


@pytest.mark.slow
def test_ephemeral_mode_needs_no_server_even_on_a_busy_machine(project, stages, tmp_path):
    """Issue 17: a fresh PREFECT_HOME makes the temporary server create its database first,
    longer than Prefect's default 20 s startup timeout when every core is busy."""
    env = {**base_env(tmp_path / "home"), "PYTHONPATH": str(project / "src")}
    with busy_cpus(tmp_path, seconds=400):
        result = run_module("pipelines.run", [], project, env)
    out = check(result)
    assert "starting a temporary Prefect server" in result.stderr
    assert "Starting temporary server" in out  # Prefect's own line
    assert result.stdout.count(": up to date") == len(stages)


def test_a_temporary_server_that_does_not_start_is_one_line(project, tmp_path):
    env = {**base_env(tmp_path / "home"), "PYTHONPATH": str(project / "src")}
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "0"  # the user's value wins
    before = git_status(project), (project / "dvc.lock").stat().st_mtime_ns
    result = run_module("pipelines.run", [], project, env)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "temporary server did not start" in error and "timeout 0 s" in error
    assert "`prefect server start`" in error
    assert "`export PREFECT_API_URL=http://127.0.0.1:4200/api`" in error
    assert (git_status(project), (project / "dvc.lock").stat().st_mtime_ns) == before


def git_status(root) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.slow
def test_served_deployment_has_its_schedule_and_runs(project, stages, prefect_server, tmp_path):
    env = client_env(project, prefect_server)
    serve = start(
        [BIN / "python", "-m", "pipelines.serve", "--cron", "0 3 * * *"],
        project,
        env,
        tmp_path / "serve.log",
    )
    try:
        deployment = wait_for_deployment(
            prefect_server, "genbench/nightly", serve, tmp_path / "serve.log"
        )
        (schedule,) = deployment["schedules"]
        assert schedule["schedule"]["cron"] == "0 3 * * *" and schedule["active"]
        assert deployment["parameters"]["repo"] == str(project)
        # serve registers its deployments one after the other: wait for the second as well
        sweep = wait_for_deployment(
            prefect_server, "sweep/nightly-sweep", serve, tmp_path / "serve.log"
        )
        assert sweep["parameters"]["repo"] == str(project) and not sweep["schedules"]
        out = check(
            run_cli(
                ["deployment", "run", "genbench/nightly", "--watch", "--watch-timeout", "300"],
                env,
                tmp_path,
            )
        )
        assert "Completed" in out
        runs = api(
            prefect_server,
            "/flow_runs/filter",
            {"deployments": {"id": {"any_": [deployment["id"]]}}},
        )
        (run,) = [run for run in runs if run["state"]["type"] != "SCHEDULED"]
        assert run["state"]["type"] == "COMPLETED"
        assert set(task_runs(prefect_server, run["id"])) == stages
    finally:
        stop(serve)  # before the server: stopped the other way round, serve hangs


def test_serve_and_deploy_refuse_a_bad_cron_or_no_server(project, prefect_server, tmp_path):
    env = client_env(project, prefect_server)
    for module in ("pipelines.serve", "pipelines.deploy"):
        bad = run_module(module, ["--cron", "61 * * * *"], project, env)
        assert bad.returncode == 2
        assert (
            bad.stderr.strip() == "error: --cron '61 * * * *': Invalid cron string: \"61 * * * *\""
        )
    alone = {**base_env(tmp_path / "home"), "PYTHONPATH": str(project / "src")}
    missing = run_module("pipelines.serve", [], project, alone)
    assert missing.returncode == 2 and "PREFECT_API_URL is not set" in missing.stderr


@pytest.mark.slow
def test_work_pool_worker_runs_the_deployment(project, prefect_server, tmp_path):
    env = client_env(project, prefect_server)
    check(
        run_module(
            "pipelines.deploy", ["--pool", "genbench-test", "--source", project], project, env
        )
    )
    worker_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "2"}
    worker = start(
        [BIN / "prefect", "worker", "start", "--pool", "genbench-test"],
        tmp_path,
        worker_env,
        tmp_path / "worker.log",
    )
    try:
        out = check(
            run_cli(
                ["deployment", "run", "genbench/nightly-pool", "--watch", "--watch-timeout", "300"],
                env,
                tmp_path,
            )
        )
        assert "Completed" in out
    finally:
        stop(worker)
    assert "Skipped" in (tmp_path / "worker.log").read_text()


def test_failing_stage_fails_the_flow_and_leaves_downstream_unrun(project, stages, prefect_server):
    """Valid params (validate passes), but both GAN seeds rerun and fail at their first check:
    the train split was altered in place (size kept), which DVC does not notice and the training
    does (meta.json's sha256). The flow goes on with what does not depend on a failed stage, then
    names the first failure, the other and what did not run; no traceback on the way."""
    params = (project / "params.yaml").read_text()
    # train@gan-0, -1 and downstream must rerun; one at a time in the workspace itself (a
    # parallel worker checks the data out of DVC's cache, unaltered)
    set_params(project, {"gan": {"lr_g": 0.0003}, "orchestration": {"workers": 1}})
    split = project / "data/prepared/train_images.npy"
    kept, stat = split.read_bytes(), split.stat()
    split.write_bytes(kept[:-1] + bytes([kept[-1] ^ 0xFF]))
    os.utime(split, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    try:
        result = run_module(
            "pipelines.run", ["--repo", project], project, client_env(project, prefect_server)
        )
    finally:
        (project / "params.yaml").write_text(params)
        split.write_bytes(kept)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: stage 'train@gan-0' failed: error: "), error
    assert "train_images.npy: sha256" in error and "; also failed: train@gan-1;" in error
    graph = read_graph(project)
    blocked = downstream(graph, "train@gan-0")
    assert blocked and f"; not run: {', '.join(blocked)} (flow run " in error
    run_id = flow_run_id(result.stderr)
    flow_state = api(prefect_server, f"/flow_runs/{run_id}")["state"]
    assert flow_state["type"] == "FAILED" and "sha256" in flow_state["message"]
    states = {name: run["state"]["name"] for name, run in task_runs(prefect_server, run_id).items()}
    failed = {"train@gan-0", "train@gan-1"}
    assert {states[name] for name in failed} == {"Failed"}
    held_back = {*blocked, *downstream(graph, "train@gan-1")}
    assert {states[name] for name in held_back} == {"NotReady"}
    assert states.pop("validate") == "Completed"  # params.yaml changed: checked again, passed
    assert {states[name] for name in stages - failed - held_back - {"validate"}} == {"Skipped"}


@pytest.mark.slow  # ranking itself: tests/unit/test_pipelines_graph.py
def test_sweep_makes_one_experiment_and_mlflow_run_per_point(project, prefect_server):
    commit(project, "tiny run")  # experiments start from the last commit and its dvc.lock
    env = client_env(project, prefect_server)
    result = run_module("pipelines.sweep", ["gan.z_dim=4,16", "--repo", project], project, env)
    out = check(result)
    run_id = flow_run_id(out)
    names = sorted(task_runs(prefect_server, run_id))
    assert len(names) == 2
    experiments = [name.split()[0] for name in names]  # "<experiment> gan.z_dim=4"
    assert sorted(dvc_experiments(project, env)) == experiments
    for experiment, z_dim in zip(experiments, ("4", "16"), strict=True):
        names = ["compare", "eval gan-seed0", "eval gan-seed1", "gan-seed0", "gan-seed1", "report"]
        assert sorted(mlflow_runs(project, experiment)) == [
            (f"{name} · {experiment}", "FINISHED") for name in names
        ]
        assert f"| {experiment} | ok | {z_dim} |" in result.stdout
    assert "ranked by gan val fid: the validation split" in result.stdout
    (artifact,) = api(
        prefect_server, "/artifacts/filter", {"artifacts": {"key": {"any_": ["genbench-sweep"]}}}
    )
    assert artifact["type"] == "table" and artifact["flow_run_id"] == run_id


def dvc_experiments(project, env) -> list[str]:
    """The names `dvc exp ls` lists."""
    return subprocess.run(
        [BIN / "dvc", "exp", "ls", "--name-only"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def wait_for_deployment(server, name, proc, log, timeout=90) -> dict:
    import time
    import urllib.error

    deadline = time.time() + timeout
    while True:
        try:
            return api(server, f"/deployments/name/{name}")
        except urllib.error.HTTPError:
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(
                    f"{name} was not registered: {log.read_text()[-3000:]}"
                ) from None
            time.sleep(1)


def run_cli(args, env, cwd):
    return subprocess.run(
        [BIN / "prefect", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


@pytest.mark.slow  # the verdicts and the table: tests/unit/test_ablation.py
def test_ablation_runs_an_option_against_the_committed_run(project, prefect_server):
    set_params(project, {"orchestration": {"ablation": {"hinge": ["gan.loss=hinge"]}}})
    commit(project, "an ablation option")  # experiments start from the last commit
    env = client_env(project, prefect_server)
    result = run_module("pipelines.ablation", ["hinge", "--repo", project], project, env)
    out = check(result)
    docs = (project / "docs" / "ablations.md").read_text()
    written = docs[docs.index("<!-- ablation:start -->") : docs.index("<!-- ablation:end -->")]
    rows = [line for line in written.splitlines() if line.startswith("| gan |")]
    assert [row.split(" | ")[1] for row in rows] == ["baseline", "hinge"], docs
    experiment = rows[1].split(" | ")[-2]
    assert experiment.endswith("-hinge")  # <flow run name>-<option>
    assert experiment in dvc_experiments(project, env)
    assert ("compare · " + experiment, "FINISHED") in mlflow_runs(project, experiment)
    with sqlite3.connect(project / "mlflow.db") as db:
        names = [row[0] for row in db.execute("SELECT name FROM runs WHERE name LIKE 'ablation%'")]
    assert len(names) == 1
    assert "winners on the validation split:" in out
    (artifact,) = api(
        prefect_server, "/artifacts/filter", {"artifacts": {"key": {"any_": ["genbench-ablation"]}}}
    )
    assert artifact["flow_run_id"] == flow_run_id(out)
