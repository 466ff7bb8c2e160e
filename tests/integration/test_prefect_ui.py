"""What a flow run leaves in Prefect, seen through its API, `prefect deploy` and its UI in a real
headless Chromium: the metric table and report artifacts, a `Skipped` stage, and the
deployments of prefect.yaml. One real `prefect server` for the module; the project is a copy of
this repository whose dvc.yaml is one trivial stage, so a flow run takes seconds, while the
artifacts are built from the repository's committed metrics/ and reports/.
"""

import re
import subprocess

import pytest
import yaml

from tests.conftest import ROOT
from tests.integration.conftest import BIN, copy_project
from tests.integration.prefect_fixtures import (
    api,
    commit,
    flow_run_id,
    run_module,
    running_server,
    start,
    stop,
    task_runs,
)
from tests.integration.test_report_browser import FLAGS, chromium

ONE_STAGE = {"stages": {"check": {"cmd": "echo checked > checked.txt", "outs": ["checked.txt"]}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from running_server(tmp_path_factory.mktemp("prefect-ui-server"))


@pytest.fixture(scope="module")
def project(tmp_path_factory, server):
    """The copy with its one stage already run: DVC finds it up to date."""
    root = tmp_path_factory.mktemp("prefect-ui") / "repo"
    root.mkdir()
    copy_project(root)
    (root / "dvc.yaml").write_text(yaml.safe_dump(ONE_STAGE))
    subprocess.run([BIN / "dvc", "repro", "-q"], cwd=root, env=server.env, check=True)
    commit(root, "one stage")
    return root


def env_of(project, server) -> dict:
    # PWD as a shell started in the project root sets it (prefect.yaml's pull step reads it)
    return {**server.env, "PYTHONPATH": f"{project / 'src'}:{project}", "PWD": str(project)}


def check(result) -> str:
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


def prefect(args: list[str], project, server, cwd=None) -> str:
    """`prefect <args>` (non-interactive) in the project; its output, or fail with it."""
    return check(
        subprocess.run(
            [BIN / "prefect", "--no-prompt", *args],
            cwd=cwd or project,
            env=env_of(project, server),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    )


def artifacts(server, run_id: str) -> dict[str, dict]:
    found = api(server, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    return {artifact["key"]: artifact for artifact in found}


@pytest.fixture(scope="module")
def flow_run(project, server) -> str:
    """`python -m pipelines.run` once: the id of its flow run."""
    result = run_module("pipelines.run", ["--repo", project], project, env_of(project, server))
    return flow_run_id(check(result))


def test_flow_run_attaches_the_metric_table_and_report_links(project, server, flow_run):
    (stage,) = task_runs(server, flow_run).values()
    assert (stage["state"]["type"], stage["state"]["name"]) == ("COMPLETED", "Skipped")
    found = artifacts(server, flow_run)
    assert set(found) == {"genbench-metrics", "genbench-headline", "genbench-diff"}
    change = found["genbench-diff"]["data"]  # the committed metrics: nothing moved
    assert change.startswith("## Change since HEAD (") and "No metric changed" in change
    table = found["genbench-metrics"]
    assert table["type"] == "markdown"
    rows = {line.split(" | ")[0].strip("| ") for line in table["data"].splitlines()}
    assert {"gan", "vae", "ddpm", "real data", "verdict"} <= rows
    assert "±" in table["data"] and "FID (evaluator)" in table["data"]
    # the headline, with where the report is in MLflow (this copy's store has no report run)
    headline = found["genbench-headline"]
    assert headline["type"] == "markdown" and headline["data"].startswith("## Headline")
    assert "**FID**" in headline["data"] and "not logged to MLflow" in headline["data"]
    # named after the commit and the execution
    run = api(server, f"/flow_runs/{flow_run}")
    commit_sha = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"], cwd=project, capture_output=True, text=True
    ).stdout.strip()
    assert run["name"].startswith(f"genbench {commit_sha} · ") and len(commit_sha) == 7


def test_prefect_yaml_deploys_the_nightly_schedule(project, server, tmp_path):
    makefile_cron = re.search(r"^CRON \?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile_cron
    prefect(["work-pool", "create", "genbench", "--type", "process"], project, server)
    prefect(["deploy", "--all"], project, server)
    nightly = api(server, "/deployments/name/genbench/nightly-pool")
    (schedule,) = nightly["schedules"]
    assert schedule["active"] and schedule["schedule"]["cron"] == makefile_cron.group(1)
    assert schedule["schedule"]["timezone"] == "UTC"
    assert nightly["parameters"] == {"repo": ".", "pull": False, "push": False}
    assert nightly["work_pool_name"] == "genbench"
    assert nightly["global_concurrency_limit"]["limit"] == 1
    # The pull step's {{ $PWD }} is the directory `prefect deploy` ran in, made absolute.
    assert nightly["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(project)}}
    ]
    sweep = api(server, "/deployments/name/sweep/nightly-pool-sweep")
    assert sweep["work_pool_name"] == "genbench" and not sweep["schedules"]
    assert not subprocess.run(  # deploying wrote nothing back into prefect.yaml
        ["git", "status", "--porcelain", "prefect.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_worker_started_elsewhere_runs_the_deployment_in_the_project(project, server, tmp_path):
    """The pull step, for real: the worker starts in tmp_path, the flow finds the project."""
    env = {**env_of(project, server), "PREFECT_WORKER_QUERY_SECONDS": "2"}
    worker = start(
        [BIN / "prefect", "worker", "start", "--pool", "genbench"],
        tmp_path,
        env,
        tmp_path / "worker.log",
    )
    try:
        watch = ["deployment", "run", "genbench/nightly-pool", "--watch", "--watch-timeout", "240"]
        assert "Completed" in prefect(watch, project, server, cwd=tmp_path)
    finally:
        stop(worker)
    deployment = api(server, "/deployments/name/genbench/nightly-pool")
    runs = api(server, "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}})
    (run,) = [run for run in runs if run["state"]["type"] != "SCHEDULED"]
    run_id = run["id"]
    assert run["state"]["type"] == "COMPLETED"
    (stage,) = task_runs(server, run_id).values()
    assert stage["state"]["name"] == "Skipped"
    assert "genbench-metrics" in artifacts(server, run_id)


def test_prefect_ui_shows_the_artifact_and_the_skipped_stage(server, flow_run, tmp_path):
    """The UI is a JavaScript app: the page is read once it has fetched and drawn the data."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    ui = server.url.removesuffix("/api")
    table = artifacts(server, flow_run)["genbench-metrics"]
    (stage,) = task_runs(server, flow_run).values()
    verdict = next(line for line in table["data"].splitlines() if line.startswith("| verdict"))
    first_verdict = verdict.split(" | ")[1]  # e.g. "tie: gan, vae" or "vae best"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{ui}/artifacts/artifact/{table['id']}")
            page.get_by_role("cell", name=first_verdict).first.wait_for(timeout=60_000)
            artifact_text = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "artifact.png"))
            page.goto(f"{ui}/runs/task-run/{stage['id']}")
            page.get_by_text("Skipped", exact=True).first.wait_for(timeout=60_000)
            page.get_by_text("didn't change, skipping").first.wait_for(timeout=60_000)  # logs
            task_text = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "task-run.png"))
        finally:
            browser.close()
    assert "genbench-metrics" in artifact_text and "real data" in artifact_text
    assert "Can't connect to Server API" not in artifact_text + task_text
    assert "check" in task_text and "Skipped" in task_text
