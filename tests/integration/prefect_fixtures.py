"""A real `prefect server` and a tiny copy of the project for the Prefect flow tests."""

import json
import os
import re
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import BIN
from tests.integration.processes import free_port, start, stop, wait_healthy

GIT = ["git", "-c", "user.email=test@genbench.local", "-c", "user.name=genbench tests"]


def commit(root: Path, message: str) -> None:
    """Commit everything; a commit with nothing new is made too, so a test run alone (not after
    the module's earlier tests, which change the project) still starts from a commit."""
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-q", "--allow-empty", "-m", message], cwd=root, check=True)


def base_env(home: Path) -> dict[str, str]:
    """A subprocess environment: this venv first, a private PREFECT_HOME, nothing phoning home."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "MLFLOW_TRACKING_URI", "GENBENCH_PIPELINE_ID"))
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        DVC_NO_ANALYTICS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        HF_HUB_OFFLINE="1",
        # Git identity for `dvc exp run` commits in the copies.
        GIT_AUTHOR_NAME="genbench tests",
        GIT_AUTHOR_EMAIL="test@genbench.local",
        GIT_COMMITTER_NAME="genbench tests",
        GIT_COMMITTER_EMAIL="test@genbench.local",
    )
    return env


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:<port>/api
    env: dict[str, str]  # for clients of this server: PREFECT_HOME and PREFECT_API_URL set


def running_server(root: Path):
    """`prefect server start` on 127.0.0.1 with PREFECT_HOME in root; stopped by PID after."""
    port = free_port()
    env = base_env(root / "home")
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/api"
    # --port moves the API, not the UI's idea of it (127.0.0.1:4200 unless told): a browser
    # pointed at the UI needs PREFECT_UI_API_URL (docs/orchestration.md).
    proc = start(cmd, root, {**env, "PREFECT_UI_API_URL": url}, root / "server.log")
    # The first start creates the server's database: give a busy machine time (issue 17).
    wait_healthy(url, proc, root / "server.log", timeout=180)
    yield Server(url=url, env={**env, "PREFECT_API_URL": url})
    stop(proc)


def run_module(module: str, args: list, cwd: Path, env: dict, timeout: float = 600):
    """`python -m module args` in cwd; returns the CompletedProcess (output captured)."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def api(server: Server, path: str, body: dict | None = None):
    """GET (or POST body) `path` on the server's REST API; returns the decoded JSON."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{server.url}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def task_runs(server: Server, flow_run_id: str) -> dict[str, dict]:
    """The flow run's task runs by name, each with its `state` (type, name, message)."""
    runs = api(server, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
    return {run["name"]: run for run in runs}


def flow_run_id(output: str) -> str:
    """The id in the entry points' last line: `flow run <id>: Completed` / `(flow run <id>)`."""
    found = re.findall(r"flow run ([0-9a-f-]{36})", output)
    assert found, output[-3000:]
    return found[-1]
