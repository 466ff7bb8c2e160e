"""Two DVC commands in one workspace: the flows' stages wait for DVC's lock instead of failing.

DVC holds its workspace lock while it reads and writes its bookkeeping (not while a stage's
command runs); another process holds it here the way a second `dvc repro` would.
"""

import subprocess
import sys
import time

from pipelines.repro import Outcome, dvc_env, repro_stage

DVC_YAML = """stages:
  fast:
    cmd: python -c "open('b.txt', 'w').write('b')"
    outs: [b.txt]
"""


def test_a_stage_waits_for_the_lock_another_dvc_holds(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    env = dvc_env()
    hold = "import sys, time; from dvc.repo import Repo\nwith Repo('.').lock:\n"
    hold += "    print('locked', flush=True); time.sleep(4)\n"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        plain = subprocess.run(
            [sys.executable, "-m", "dvc", "repro", "fast"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert plain.returncode != 0 and "unable to acquire lock" in plain.stderr.lower()
        start, lines = time.monotonic(), []
        assert repro_stage(tmp_path, "fast", env, lines.append) == Outcome.RAN
        assert holder.poll() is not None or time.monotonic() - start > 1  # it waited its turn
    finally:
        holder.wait(timeout=60)
    assert holder.returncode == 0 and (tmp_path / "b.txt").read_text() == "b"
