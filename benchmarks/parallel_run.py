"""`make run` serial against parallel: the whole default graph from nothing, back to back.

    .venv/bin/python benchmarks/parallel_run.py [--rounds 1] [--params params.yaml]
        [--history FILE]

Each round makes two fresh copies of the project (tracked and new files, no outputs, no DVC
cache, no MLflow store) and times, one after the other:

- serial: `make run` as it was before issue 27, `genbench validate` then `dvc repro` (one stage
  at a time, torch's default threads);
- parallel: `make run` now, `python -m pipelines.run` with `orchestration.workers` from the
  params (auto: one worker per core), a temporary Prefect server and the worktrees included.

Prints each wall time and the ratio serial / parallel per round; the order alternates between
rounds. Both must end with `dvc status` clean. Writes nothing into this checkout.

`--history FILE`: the parallel copy starts with FILE as its stage durations of earlier runs
(pipelines/schedule.py orders stages by them), and FILE gets the copy's durations afterwards.
Without it, or the first time, the parallel run is a first run: no durations known.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.schedule import HISTORY  # noqa: E402  (this checkout's, not an installed one)

BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.email=bench@genbench.local", "-c", "user.name=bench"]


def fresh_copy(dest: Path, params: Path) -> Path:
    """The checkout's files without outputs, in a new git repository, committed."""
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file() and not name.startswith(("dvc.lock", "metrics/", "reports/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    shutil.copy2(params, dest / "params.yaml")
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-qm", "bench"], cwd=dest, check=True)
    return dest


def run(kind: str, root: Path, home: Path) -> float:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "OMP_NUM_THREADS"))
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(root / "src"),
        DVC_NO_ANALYTICS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        HF_HUB_OFFLINE="1",
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    if kind == "serial":
        command = f"{BIN}/genbench validate --params params.yaml && {BIN}/dvc repro"
    else:
        command = f"{sys.executable} -m pipelines.run"
    start = time.perf_counter()
    result = subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = root.parent / f"{kind}.log"
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.exit(f"error: the {kind} run failed (exit {result.returncode}); see {log}")
    status = subprocess.run(
        [str(BIN / "dvc"), "status"], cwd=root, env=env, capture_output=True, text=True
    )
    if "up to date" not in status.stdout:
        sys.exit(f"error: dvc status after the {kind} run is not clean:\n{status.stdout}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--keep", action="store_true", help="keep the copies (their logs)")
    parser.add_argument("--history", type=Path, help="stage durations in and out (see above)")
    args = parser.parse_args()
    print(f"cores: {len(os.sched_getaffinity(0))}; params: {args.params}")
    for index in range(args.rounds):
        order = ["serial", "parallel"] if index % 2 == 0 else ["parallel", "serial"]
        times = {}
        with tempfile.TemporaryDirectory(prefix="genbench-bench-") as tmp:
            for kind in order:
                folder = Path(tmp) / kind
                root = fresh_copy(folder / "repo", args.params)
                kept = root / HISTORY
                if kind == "parallel" and args.history and args.history.exists():
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(args.history, kept)
                    print(f"stage durations of an earlier run: {args.history}")
                times[kind] = run(kind, root, folder / "prefect-home")
                if kind == "parallel" and args.history and kept.exists():
                    shutil.copy2(kept, args.history)
                print(f"round {index + 1}: {kind}: {times[kind]:.0f} s", flush=True)
            if args.keep:
                shutil.copytree(tmp, f"{tmp}-kept")
                print(f"copies kept in {tmp}-kept")
        print(f"round {index + 1}: serial / parallel = {times['serial'] / times['parallel']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
