"""Real `dvc repro` of the data stages in a temporary copy of the repository."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import copy_project


def run(cmd: list[str], cwd: Path, extra_env: dict | None = None) -> str:
    env = {
        **os.environ,
        **(extra_env or {}),
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
    (tmp_path / "repo").mkdir()
    return copy_project(tmp_path / "repo")


def ran(output: str, stages=("download", "preprocess")) -> set[str]:
    return {s for s in stages if f"Running stage '{s}'" in output}


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


@pytest.mark.timeout(900)  # four `dvc repro` runs of the whole tiny graph
def test_whole_graph_and_num_samples_reruns_only_evaluation(project):
    """Every stage on tiny params; then evaluate.num_samples changes only the evaluate stages,
    a template only the report, a DDPM params field only the DDPM's stages and the report."""
    from tests.integration.conftest import TINY
    from tests.integration.test_evaluate_stage import TINY_EVALUATE

    # DVC wants every key a stage lists in params.yaml: update the full file, section by section
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in {**TINY, "evaluate": TINY_EVALUATE}.items():
        if isinstance(values, dict):
            params[section] = {**params[section], **values}
        else:
            params[section] = values
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    first = run(["dvc", "repro"], project, env)
    stages = {"download", "preprocess", "train_evaluator", "evaluate_real", "report"}
    stages |= {
        f"{stage}@{name}" for stage in ("train", "evaluate") for name in ("gan", "vae", "ddpm")
    }
    assert ran(first, stages) == stages
    page = (project / "reports/index.html").read_text()
    assert all(f"<tr><td>{name}</td>" in page for name in ("gan", "vae", "ddpm"))
    assert "No metrics at HEAD to compare with" in page  # the copy has no commit yet
    assert_report_logged_to_every_run(project)
    shown = run(["dvc", "metrics", "show"], project, env)
    for name in ("gan", "vae", "ddpm", "real"):
        assert f"metrics/{name}.json" in shown
    assert "evaluator.fid" in shown

    params["evaluate"]["num_samples"] = 150
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    second = run(["dvc", "repro"], project, env)
    evaluation = {"evaluate@gan", "evaluate@vae", "evaluate@ddpm", "evaluate_real"}
    assert ran(second, stages) == evaluation | {"report"}
    card = json.loads((project / "metrics/gan.protocol.json").read_text())
    assert card["num_samples"] == 150

    template = project / "src/genbench/report/templates/report.html.j2"
    template.write_text(template.read_text().replace("<h1>", "<h1>Edited: "))
    third = run(["dvc", "repro"], project, env)
    assert ran(third, stages) == {"report"}
    assert "<h1>Edited: " in (project / "reports/index.html").read_text()

    # A new DDPM option, in its family's params module: only the DDPM's stages change.
    ddpm_params = project / "src/genbench/families/ddpm/params.py"
    text = ddpm_params.read_text().replace(
        "    lr: float = Field(",
        "    new_option: bool = False  # added by the test\n    lr: float = Field(",
    )
    ddpm_params.write_text(text)
    status = run(["dvc", "status", "--json"], project, env).splitlines()
    changed = json.loads(next(line for line in status if line.startswith("{")))
    assert set(changed) == {"train@ddpm", "evaluate@ddpm"}
    fourth = run(["dvc", "repro"], project, env)
    assert ran(fourth, stages) == {"train@ddpm", "evaluate@ddpm", "report"}


def assert_report_logged_to_every_run(project: Path) -> None:
    """Each model's MLflow run holds the report under its `report/` artifacts."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    for name in ("gan", "vae", "ddpm"):
        run_id = json.loads((project / f"models/{name}/mlflow_run.json").read_text())["run_id"]
        (execution,) = client.list_artifacts(run_id, "report")  # report/<pipeline id>/
        files = {f.path.rsplit("/", 1)[-1] for f in client.list_artifacts(run_id, execution.path)}
        assert {"index.html", "report.md", "images"} <= files, (name, files)
