"""No output lost to a corrupt checkpoint, a stale temp file or a tracking store that is not a live
server; `genbench sample` refuses bad arguments before importing torch (issue 14, items 2-7)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from genbench.core import checkpoint
from genbench.core.errors import GenbenchError
from genbench.core.system import store_problem
from genbench.tracking import TrackingError, check_reachable
from tests.conftest import ROOT
from tests.integration.conftest import run_command, run_train, tiny_params
from tests.integration.processes import free_port
from tests.report_fixture import write_outputs


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load_weights(model_dir / "weights.safetensors")


def test_corrupt_checkpoint_is_set_aside_and_training_starts_afresh(tmp_path, tiny_data):
    """A garbage last.pt is moved aside (kept), stale temps are removed, and the result is the
    same network a fresh training makes (bit-identical)."""
    fresh, broken = tmp_path / "fresh", tmp_path / "broken"
    for root in (fresh, broken):
        root.mkdir()
    params = tiny_params(tmp_path, gan={"steps": 20})
    run_train("gan", params, tiny_data, fresh)

    work = broken / "checkpoints/gan"
    work.mkdir(parents=True)
    (work / "last.pt").write_bytes(b"\x00garbage, as after a disk fault")
    (work / ".last.pt.abc123.tmp").write_bytes(b"half a save")  # a kill during a save
    (broken / "models/.gan.tmp-xyz").mkdir(parents=True)  # a kill during write_model_dir
    result = run_train("gan", params, tiny_data, broken)

    said = [line for line in result.stdout.splitlines() if "moved it to" in line]
    assert len(said) == 1 and "last.pt.corrupt-1" in said[0] and "step 0" in said[0]
    assert (work / "last.pt.corrupt-1").read_bytes().startswith(b"\x00garbage")
    assert not (work / ".last.pt.abc123.tmp").exists()
    assert not (broken / "models/.gan.tmp-xyz").exists()
    a, b = weights(fresh / "models/gan"), weights(broken / "models/gan")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_batch_larger_than_the_train_split_is_warned(tmp_path, tiny_data):
    params = tiny_params(tmp_path, vae={"steps": 2, "batch_size": 4096, "log_every": 1})
    result = run_train("vae", params, tiny_data, tmp_path)
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "vae.batch_size = 4096" in warned[0]
    assert "larger than the train split" in warned[0]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("file:///tmp/mlruns", "file store"),
        ("mlruns", "file store"),
        ("sqlite:///{root}/read-only.db", "read-only"),
        ("sqlite:///{root}/locked/mlflow.db", "read-only (sqlite writes a journal"),
        ("sqlite:///{root}/absent/mlflow.db", "does not exist"),
        ("sqlite:///{root}", "is a directory"),
    ],
)
def test_tracking_stores_that_cannot_take_runs_are_named(tmp_path, uri, reason):
    (tmp_path / "read-only.db").write_bytes(b"")
    (tmp_path / "read-only.db").chmod(0o444)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o555)
    uri = uri.format(root=tmp_path)
    assert reason in store_problem(uri)
    with pytest.raises(TrackingError) as caught:
        check_reachable(uri)
    assert "MLFLOW_TRACKING_URI" in str(caught.value) and "\n" not in str(caught.value)
    assert store_problem(f"sqlite:///{tmp_path}/fine.db") is None
    (tmp_path / "locked").chmod(0o755)


def test_file_store_stops_training_before_any_compute(tmp_path, tiny_data):
    params = tiny_params(tmp_path)
    started = time.monotonic()
    result = run_train("gan", params, tiny_data, tmp_path, f"file://{tmp_path}/mlruns", check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "MLFLOW_TRACKING_URI" in lines[0] and "file store" in lines[0]
    assert time.monotonic() - started < 60
    assert not (tmp_path / "models/gan").exists() and not (tmp_path / "checkpoints").exists()


def test_report_renders_without_the_tracking_store(tmp_path):
    write_outputs(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    cmd = [sys.executable, ROOT / "stages/report.py", "--compare", "metrics/compare.json"]
    cmd += ["--figures", "figures", "--out", "reports", "--params", ROOT / "params.yaml"]
    dead = f"http://127.0.0.1:{free_port()}"
    result = run_command(cmd, tmp_path, tracking_uri=dead, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "reports/index.html").is_file()
    assert "mlflow: report not logged" in result.stdout and dead in result.stdout
    assert "(not logged to MLflow)" in result.stdout


TRACK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import mlflow
    from genbench import tracking
    Path("note.txt").write_text(sys.argv[1])
    with tracking.start_run("note.txt", "train@gan-0", "gan", {"t": "x"}) as run:
        mlflow.log_artifacts("logged")
    run_id = run.info.run_id
    print(run_id, mlflow.get_run(run_id).info.artifact_uri)
    """
)


def track(root: Path, text: str) -> tuple[str, str]:
    """A run with one artifact in root's default store (sqlite:///mlflow.db), as a stage does."""
    (root / "logged").mkdir(exist_ok=True)
    (root / "logged/file.txt").write_text(text)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(ROOT / "src")}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(
        [sys.executable, "-c", TRACK, text], cwd=root, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_id, uri = result.stdout.strip().splitlines()[-1].split()
    return run_id, uri


def test_copied_workspace_keeps_its_artifacts(tmp_path):
    """mlflow.db stores absolute artifact paths; a copy of the project logs into its own."""
    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    track(original, "first")
    before = sorted(p for p in (original / "mlruns").rglob("*"))
    shutil.copytree(original, copy)
    _, uri = track(copy, "second")
    assert uri.startswith(str(copy.resolve())), uri
    assert sorted(p for p in (original / "mlruns").rglob("*")) == before
    logged = [p.read_text() for p in (copy / "mlruns").rglob("file.txt")]
    assert "second" in logged


GENBENCH_SAMPLE = textwrap.dedent(
    """
    import sys
    from genbench import cli
    sys.argv = ["genbench", "sample", "--model", "models/gan", *sys.argv[1:]]
    try:
        cli.main()
    except SystemExit as stop:
        print("exit", stop.code, "torch" in sys.modules)
    """
)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--out", "x.png", "--n", "0"], "--n = 0"),
        (["--out", "x.png", "--n", "100001"], "--n = 100001"),
        (["--out", "x.png", "--seed", str(2**70)], "--seed"),
        (["--out", "x.png", "--seed", "-1"], "--seed"),
        (["--out", "x.png", "--device", "bogus"], "--device = 'bogus'"),
        (["--out", "params.yaml/x.png"], "params.yaml is a file"),
        (["--out", "models"], "is a directory"),
    ],
)
def test_sample_arguments_fail_in_one_line_before_importing_torch(tmp_path, args, named):
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    (tmp_path / "models").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", GENBENCH_SAMPLE, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert result.stdout.strip() == "exit 1 False"  # refused, and torch never imported


def test_absent_cuda_names_the_key():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from genbench.core.device import resolve_device

    with pytest.raises(GenbenchError, match=r"^evaluate.device = 'cuda:3': CUDA is not"):
        resolve_device("cuda:3", key="evaluate.device")


def test_inception_weights_file_that_is_not_inception_is_named(tmp_path):
    from genbench.config.evaluate import EvaluateParams
    from genbench.preflight import inception_problem

    bad = tmp_path / "weights.pth"
    checkpoint.save({"something": torch.zeros(1)}, bad)
    cfg = EvaluateParams(feature_extractor="inception-v3-compat", inception_weights=str(bad))
    assert "not torch-fidelity's Inception weights" in inception_problem(cfg)
    assert json.dumps(inception_problem(cfg)).count("\\n") == 0
