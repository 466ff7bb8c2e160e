"""Shared fixtures: the repository root and a helper that writes a params file."""

import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Nothing the tests start may phone home.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def write_params(tmp_path):
    """Write a params mapping (default: the repo's params.yaml updated by `changes`) to a file."""

    def write(
        changes: dict | None = None, base: dict | None = None, name: str = "params.yaml"
    ) -> Path:
        params = base if base is not None else yaml.safe_load((ROOT / "params.yaml").read_text())
        for dotted, value in (changes or {}).items():
            *parents, leaf = dotted.split(".")
            node = params
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        path = tmp_path / name
        path.write_text(yaml.safe_dump(params))
        return path

    return write
