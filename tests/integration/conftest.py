"""A tiny prepared dataset (digits at 8×8), a runner for the real train stage, and the whole
stage graph run once on tiny params (shared by the test modules that need its outputs)."""

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from genbench.config.data import DataParams
from genbench.data.download import download
from genbench.data.preprocess import preprocess
from tests.conftest import ROOT

BIN = Path(sys.executable).parent
TINY = {
    "seed": 0,
    "data": {"source": "digits", "image_size": 8},
    "gan": {"steps": 40, "batch_size": 16, "z_dim": 8, "widths": [16]},
    "vae": {"steps": 40, "batch_size": 16, "z_dim": 4, "widths": [16]},
    "ddpm": {
        "steps": 40,
        "batch_size": 16,
        "block_widths": [8, 16],
        "attention_levels": [1],
        "num_train_timesteps": 50,
        "sample_steps": 5,
    },
}
for _section in ("gan", "vae", "ddpm"):
    TINY[_section].update(checkpoint_every=20, log_every=10, device="cpu")
# Two seeds: the least that gives an interval. Each family's own 40 steps.
TINY["compare"] = {"seeds": [0, 1], "budget": {"unit": "steps"}, "confidence": 0.95}
TINY_EVALUATE = {
    "num_samples": 200,
    "kid_subset_size": 100,
    "kid_subsets": 10,
    "ssim_pairs": 100,
    "prc_repeats": 2,  # suite time: the default 10 subsamplings only narrow the estimate
    "curve_samples": 50,
    "evaluator": {"steps": 300, "batch_size": 64},
}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Prepared digits at 8×8 (the real download + preprocess code)."""
    root = tmp_path_factory.mktemp("tiny")
    params = DataParams(source="digits", image_size=8)
    download(params, root / "raw")
    preprocess(root / "raw", root / "prepared", params, seed=0)
    return root / "prepared"


def tiny_params(tmp_path: Path, name: str = "params.yaml", **sections) -> Path:
    """TINY with sections updated (e.g. gan={"steps": 10}), written to tmp_path/name."""
    params = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY.items()}
    for section, values in sections.items():
        params[section].update(values)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(params))
    return path


def train_cmd(
    model: str, params: Path, data: Path, root: Path, launcher=(sys.executable,), seed: int = 0
) -> list:
    return [
        *launcher,
        str(ROOT / "stages/train.py"),
        "--model",
        model,
        "--seed",
        str(seed),
        "--params",
        str(params),
        "--data",
        str(data),
        "--out",
        str(root / "models" / model),
        "--workdir",
        str(root / "checkpoints" / model),
    ]


def stage_env(root: Path, tracking_uri: str | None = None) -> dict:
    """Environment for a stage subprocess: MLflow logs to a sqlite file in root by default."""
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri or f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GENBENCH_PIPELINE_ID": "test-pipeline",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }


def run_command(cmd: list, root: Path, tracking_uri: str | None = None, check: bool = True):
    """Run a stage command in a subprocess from `root`; returns the CompletedProcess."""
    result = subprocess.run(
        [str(part) for part in cmd],
        cwd=root,
        env=stage_env(root, tracking_uri),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def run_train(model, params, data, root, tracking_uri=None, launcher=(sys.executable,), check=True):
    """Run the real train stage in a subprocess; returns the CompletedProcess."""
    return run_command(train_cmd(model, params, data, root, launcher), root, tracking_uri, check)


def copy_project(dest: Path) -> Path:
    """The repository's files (tracked and new, not ignored, no data) in a fresh git repo."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file() and not name.startswith(("data/", "dvc.lock")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def set_params(root: Path, changes: dict) -> dict:
    """Update root/params.yaml section by section (DVC wants every key a stage lists to exist);
    returns the new params."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in changes.items():
        params[section] = {**params[section], **values} if isinstance(values, dict) else values
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def project_env(root: Path) -> dict:
    """Environment for commands in a project copy: its own code, its own MLflow store."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root / "src"),  # the copy's code, not the checkout's
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }


@dataclass(frozen=True)
class TinyGraph:
    root: Path  # the built project: read it, never change it (copy_tree it first)
    params: dict  # its params.yaml
    output: str  # what the `dvc repro` that built it printed


@pytest.fixture(scope="session")
def tiny_graph(tmp_path_factory) -> TinyGraph:
    """A copy of the project after one whole `dvc repro` on TINY params (two seeds).

    The graph costs minutes on 2 cores: it is built once per session, and every test that
    changes a project (params, code, reruns) does so in its own copy_tree() of it."""
    root = copy_project(tmp_path_factory.mktemp("tiny-graph") / "repo")
    params = set_params(root, {**TINY, "evaluate": TINY_EVALUATE})
    result = subprocess.run(
        ["dvc", "repro"], cwd=root, env=project_env(root), capture_output=True, text=True
    )
    assert result.returncode == 0, f"dvc repro failed:\n{result.stdout}\n{result.stderr}"
    return TinyGraph(root=root, params=params, output=result.stdout + result.stderr)


def copy_tree(source: Path, dest: Path) -> Path:
    """A copy of a built project (outputs, DVC cache and run cache, MLflow store) to change.

    MLflow keeps artifact locations as absolute paths: they are moved into the copy, so that
    what the copy logs lands in the copy, never in the source."""
    shutil.copytree(source, dest, symlinks=True)
    with contextlib.closing(sqlite3.connect(dest / "mlflow.db")) as db, db:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri")):
            db.execute(
                f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (str(source), str(dest))
            )
    return dest
