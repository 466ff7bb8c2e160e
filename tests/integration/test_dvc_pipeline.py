"""Real `dvc repro` of the data stages in a temporary copy of the repository."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT


def run(cmd: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(cwd / "src"),  # the copy's code, not the checkout's
        "DVC_NO_ANALYTICS": "1",
    }
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture
def project(tmp_path) -> Path:
    """The repository's files (tracked and new, not ignored) in a fresh git repo."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    copy = tmp_path / "repo"
    for name in filter(None, files):
        if (ROOT / name).is_file() and not name.startswith(("data/", "dvc.lock")):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    run(["git", "init", "-q"], copy)
    return copy


def ran(output: str) -> set[str]:
    return {s for s in ("download", "preprocess") if f"Running stage '{s}'" in output}


def test_repro_noop_and_param_change_reruns_only_dependents(project):
    """The data stages (training is covered by test_train_stage.py on tiny params)."""
    first = run(["dvc", "repro", "preprocess"], project)
    assert ran(first) == {"download", "preprocess"}
    meta = json.loads((project / "data/prepared/meta.json").read_text())
    assert meta["image_size"] == 16 and meta["counts"]["train"] + meta["counts"]["test"] == 1797

    second = run(["dvc", "repro", "preprocess"], project)
    assert ran(second) == set()
    assert "Data and pipelines are up to date" in second

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["image_size"] = 8
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    third = run(["dvc", "repro", "preprocess"], project)
    assert ran(third) == {"preprocess"}
    meta = json.loads((project / "data/prepared/meta.json").read_text())
    assert meta["image_size"] == 8
    assert "up to date" in run(["dvc", "status", "preprocess"], project)
