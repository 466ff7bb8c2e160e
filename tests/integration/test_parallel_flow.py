"""Independent stages at once (issue 27), on copies of the tiny graph, against a real
`prefect server`: two local workers in git worktrees give the serial outputs, a failing branch
leaves the others running, a SIGKILLed training resumes on retry, Ctrl-C leaves nothing behind.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipelines.graph import downstream, read_graph
from pipelines.schedule import load_history
from pipelines.workers import available_cores, plan
from tests.integration.conftest import BIN, copy_tree, project_env, set_params
from tests.integration.prefect_fixtures import (
    api,
    commit,
    flow_run_id,
    run_module,
    running_server,
    task_runs,
)
from tests.integration.processes import free_port, start, stop

# Outputs that hold times or run ids: they differ between any two runs, serial ones too.
TIMED = ("train_stats.json", "mlflow_run.json", "losses.csv", "metrics/", "reports")
# Keys of the metrics files that are durations
TIMINGS = ("seconds", "_ms_", "per_second")
PARALLEL = {"workers": 2, "retries": 0, "retry_delay_seconds": 0}


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    yield from running_server(tmp_path_factory.mktemp("prefect-server"))


def project(tiny_graph, tmp_path: Path, name: str, **changes) -> Path:
    root = copy_tree(tiny_graph.root, tmp_path / name)
    set_params(root, changes)
    commit(root, name)
    return root


def run_flow(root: Path, server, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**server.env, "PYTHONPATH": str(root / "src")}
    return run_module("pipelines.run", ["--repo", root], root, env, timeout=timeout)


def lock_outs(root: Path) -> dict[str, str]:
    """Every output's md5 in dvc.lock, by path."""
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs", [])}


def values(path: Path, prefix: str = "") -> dict:
    """A metrics file's numbers by dotted key, durations left out."""
    data = json.loads(path.read_text()) if not isinstance(path, dict) else path
    found = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found |= values(value, f"{name}.")
        elif not any(part in name for part in TIMINGS):
            found[name] = value
    return found


def dvc_status(root: Path) -> dict:
    result = subprocess.run(
        [str(BIN / "dvc"), "status", "--json"],
        cwd=root,
        env=project_env(root),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout or "{}")


def worktrees(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "worktree", "list", "--porcelain"], cwd=root, capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def test_two_workers_give_the_outputs_of_a_serial_dvc_repro(tiny_graph, tmp_path, prefect_server):
    """New GAN params: its two seeds' chains rerun, in two worktrees at once. dvc.lock's hashes of
    every output equal those of a serial `dvc repro` with the same torch threads per stage (the
    outputs that hold times excepted, whose other numbers are compared one by one); `dvc status`
    is clean afterwards, no worktree is left, and the flow run has a timeline artifact."""
    changes = {"gan": {"lr_g": 0.0004}}
    par = project(tiny_graph, tmp_path, "par", orchestration=PARALLEL, **changes)
    ser = project(tiny_graph, tmp_path, "ser", **changes)
    threads = plan(2, available_cores(), 0)[0].threads
    result = run_flow(par, prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    serial_repro(ser, threads)
    got, want = lock_outs(par), lock_outs(ser)
    assert set(got) == set(want)
    stable = [path for path in want if not any(part in path for part in TIMED)]
    assert len(stable) > 30 and "models/gan-0/weights.safetensors" in stable
    assert {p: got[p] for p in stable} == {p: want[p] for p in stable}
    for name in ("gan-0", "gan-1", "ddpm-0"):
        path = f"metrics/runs/{name}.json"
        assert values(par / path) == values(ser / path), path
    key = "families.gan.scores.fid.mean"
    assert values(par / "metrics/compare.json")[key] == values(ser / "metrics/compare.json")[key]
    assert dvc_status(par) == {}
    assert worktrees(par) == [f"worktree {par}"] and not (par / ".dvc/tmp/workers").exists()
    run_id = flow_run_id(result.stdout + result.stderr)
    states = {n: r["state"]["name"] for n, r in task_runs(prefect_server, run_id).items()}
    assert states["train@gan-0"] == states["train@gan-1"] == "Completed"
    assert states["train@ddpm-0"] == states["evaluate@ddpm-1"] == "Skipped"
    found = api(prefect_server, "/artifacts/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
    timeline = next(a["data"] for a in found if a["key"] == "genbench-timeline")
    assert "| worker 0 |" in timeline and "| worker 1 |" in timeline
    assert "| train@gan-0 | Completed |" in timeline.replace("worker 0 | ", "").replace(
        "worker 1 | ", ""
    )
    # compare has nothing beside it: it ran in the main workspace, not in a worktree
    assert "| main workspace | compare | Completed |" in timeline
    # the stages that ran, with their seconds, order the next run's stages
    history = load_history(par)
    assert {"train@gan-0", "evaluate@gan-1", "compare"} <= set(history)
    assert "train@ddpm-0" not in history and all(s > 0 for s in history.values())


def serial_repro(root: Path, threads: int, *targets: str) -> None:
    """`dvc repro` with `threads` torch threads per stage: the reference for a parallel run."""
    result = subprocess.run(
        [str(BIN / "dvc"), "repro", *targets],
        cwd=root,
        env={**project_env(root), "OMP_NUM_THREADS": str(threads)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def plant_failure(root: Path, family: str) -> None:
    """The train stage exits 1 for one family (validate still passes: it never runs it)."""
    train = root / "stages/train.py"
    text = train.read_text()
    planted = (
        "import sys\n"
        f"if sys.argv[sys.argv.index('--model') + 1] == {family!r}:\n"
        f"    sys.exit('error: planted failure of the {family} branch')\n"
    )
    train.write_text(planted + text)


@pytest.mark.slow  # ~70 s; the serial flow's failure: test_prefect_flow.py
def test_a_failing_branch_leaves_the_other_branches_running(tiny_graph, tmp_path, prefect_server):
    """The GAN's trainings fail while the VAE's rerun: the VAE chain still runs to the end, the
    GAN's downstream ends NotReady, and the one-line error names the failure and what did not
    run. The main workspace keeps the GAN's old outputs."""
    root = project(tiny_graph, tmp_path, "fail", orchestration=PARALLEL, vae={"lr": 0.002})
    plant_failure(root, "gan")
    before = lock_outs(root)
    result = run_flow(root, prefect_server)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: stage 'train@gan-") and "planted failure" in error, error
    assert "Traceback" not in result.stderr
    graph = read_graph(root)
    assert f"; not run: {', '.join(downstream(graph, 'train@gan-0'))} (flow run" in error
    blocked = set(downstream(graph, "train@gan-0")) | set(downstream(graph, "train@gan-1"))
    states = {
        n: r["state"]["name"] for n, r in task_runs(prefect_server, flow_run_id(error)).items()
    }
    assert {states["train@gan-0"], states["train@gan-1"]} == {"Failed"}
    assert {states[name] for name in blocked} == {"NotReady"}
    vae = {"train@vae-0", "train@vae-1", "evaluate@vae-0", "evaluate@vae-1"}
    assert {states[name] for name in vae} == {"Completed"}
    after = lock_outs(root)
    assert after["models/gan-0/weights.safetensors"] == before["models/gan-0/weights.safetensors"]
    assert after["models/vae-0/weights.safetensors"] != before["models/vae-0/weights.safetensors"]
    assert worktrees(root) == [f"worktree {root}"]


def start_flow(root: Path, server) -> subprocess.Popen:
    """`python -m pipelines.run` in the background, in its own process group with SIGINT's
    default action, as a terminal starts a command (one started in the background inherits
    SIGINT ignored)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.run", "--repo", str(root)],
        cwd=root,
        env={**server.env, "PYTHONPATH": str(root / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def training_pid(root: Path, model: str) -> int | None:
    """The pid of a running train stage of `model` in one of root's worktrees."""
    found = subprocess.run(
        ["pgrep", "-f", f"stages/train.py --model {model} --seed 0"],
        capture_output=True,
        text=True,
    ).stdout.split()
    for pid in map(int, found):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(root / ".dvc/tmp/workers")):
            return pid
    return None


@pytest.mark.slow  # ~2 min: a longer training killed and resumed
def test_a_killed_training_is_retried_and_resumes_bit_identical(
    tiny_graph, tmp_path, prefect_server
):
    """SIGKILL the training process of train@gan-0 once a checkpoint exists: the task's retry
    resumes from that checkpoint (checkpoints/ is the main workspace's), and its weights equal
    those of the same training uninterrupted (a serial dvc repro with the same threads)."""
    gan = {"steps": 400, "checkpoint_every": 20}
    retry = {**PARALLEL, "retries": 1}
    root = project(tiny_graph, tmp_path, "kill", orchestration=retry, gan=gan)
    ref = project(tiny_graph, tmp_path, "ref", gan=gan)
    threads = plan(2, available_cores(), 0)[0].threads
    flow = start_flow(root, prefect_server)
    killed, deadline = False, time.time() + 300
    while not killed and flow.poll() is None and time.time() < deadline:
        pid = training_pid(root, "gan")
        if pid and any((root / "checkpoints/gan-0").glob("*")):
            os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.2)
    output, _ = flow.communicate(timeout=600)
    assert killed, output[-3000:]
    assert flow.returncode == 0, output[-3000:]
    assert "Retry 1/1" in output and "resume: continuing from step" in output
    serial_repro(ref, threads, "train@gan-0")
    weights = "models/gan-0/weights.safetensors"
    assert lock_outs(root)[weights] == lock_outs(ref)[weights]


@pytest.mark.slow  # ~1 min
def test_ctrl_c_leaves_no_worktree_and_no_half_written_output(tiny_graph, tmp_path, prefect_server):
    """Ctrl-C (SIGINT to the command's process group) while two trainings run in worktrees: the
    command exits, no worktree is left, and no output of the main workspace was touched (DVC
    finds none modified: only the changed params)."""
    root = project(tiny_graph, tmp_path, "interrupt", orchestration=PARALLEL, gan={"steps": 400})
    flow = start_flow(root, prefect_server)
    deadline = time.time() + 300
    while training_pid(root, "gan") is None and flow.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert flow.poll() is None, flow.communicate()[0][-3000:]
    os.killpg(flow.pid, signal.SIGINT)
    output, _ = flow.communicate(timeout=120)
    assert flow.returncode != 0, output[-2000:]
    assert worktrees(root) == [f"worktree {root}"], output[-2000:]
    assert not any((root / ".dvc/tmp/workers").glob("*"))
    changes = json.dumps(dvc_status(root))
    assert "changed outs" not in changes, changes


def wait_for_workers(address: str, count: int, timeout: float = 120) -> None:
    """Block until `count` Dask workers have joined the scheduler at address."""
    from distributed import Client

    with Client(address, timeout=timeout) as client:
        client.wait_for_workers(count, timeout=timeout)


@pytest.mark.slow  # ~3 min: a Dask scheduler, two workers, a DVC remote
def test_a_dask_cluster_of_two_clones_gives_the_serial_outputs(
    tiny_graph, tmp_path, prefect_server
):
    """orchestration.cluster: a real `dask scheduler` and two `dask worker` processes, each in
    its own clone of the project (its own DVC cache, nothing shared), a DVC remote in a local
    folder between them. New GAN params, left uncommitted (the job's patch carries them): the
    GAN chain runs on the workers, the main workspace restores it from the remote's run cache,
    and dvc.lock's hashes equal a serial dvc repro's; `dvc status` is clean afterwards."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    root = copy_tree(tiny_graph.root, tmp_path / "main")
    remote = tmp_path / "remote"
    dvc = [str(BIN / "dvc")]
    env = project_env(root)
    subprocess.run(
        [*dvc, "remote", "add", "-d", "store", str(remote)], cwd=root, env=env, check=True
    )
    set_params(root, {"orchestration": {"cluster": address, "retries": 0}})
    commit(root, "cluster")
    subprocess.run([*dvc, "push", "--quiet"], cwd=root, env=env, check=True)
    threads = 1
    clones = [tmp_path / "clone1", tmp_path / "clone2"]
    for clone in clones:
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)

    def clone_env(clone: Path) -> dict:  # the scheduler unpickles tasks too: the code, importable
        return {**prefect_server.env, "PYTHONPATH": f"{clone}{os.pathsep}{clone / 'src'}"}

    scheduler = [str(BIN / "dask"), "scheduler", "--port", str(port), "--no-dashboard"]
    procs = [start(scheduler, clones[0], clone_env(clones[0]), tmp_path / "scheduler.log")]
    try:
        for index, clone in enumerate(clones, start=1):
            worker_env = {
                **clone_env(clone),
                "GENBENCH_WORKER_CLONE": str(clone),
                "OMP_NUM_THREADS": str(threads),
                "DVC_NO_ANALYTICS": "1",
            }
            cmd = [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard"]
            cmd += ["--name", f"clone{index}"]
            procs.append(start(cmd, clone, worker_env, tmp_path / f"worker{index}.log"))
        wait_for_workers(address, 2)
        ref = copy_tree(tiny_graph.root, tmp_path / "ref")
        changes = {"gan": {"lr_g": 0.0004}}
        set_params(root, changes)  # uncommitted: the patch carries it to the clones
        set_params(ref, changes)
        result = run_flow(root, prefect_server)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    finally:
        for proc in reversed(procs):
            stop(proc)
    serial_repro(ref, threads)
    got, want = lock_outs(root), lock_outs(ref)
    stable = [path for path in want if not any(part in path for part in TIMED)]
    assert {p: got[p] for p in stable} == {p: want[p] for p in stable}
    assert values(root / "metrics/runs/gan-1.json") == values(ref / "metrics/runs/gan-1.json")
    assert dvc_status(root) == {}
    run_id = flow_run_id(result.stdout + result.stderr)
    runs = task_runs(prefect_server, run_id)
    ran = {name: run["state"]["name"] for name, run in runs.items()}
    assert ran["train@gan-0"] == ran["evaluate@gan-1"] == "Completed"
    assert ran["train@vae-0"] == "Skipped"
    where = [runs[name]["state"]["message"] for name in ("train@gan-0", "train@gan-1")]
    assert all("(clone1 (" in text or "(clone2 (" in text for text in where), where
    # the stages ran in the clones: their weights are in a clone's own DVC cache
    weights = got["models/gan-0/weights.safetensors"]
    cached = [c / ".dvc/cache/files/md5" / weights[:2] / weights[2:] for c in clones]
    assert any(path.exists() for path in cached)
