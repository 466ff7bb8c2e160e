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
    assert meta["image_size"] == 16 and sum(meta["counts"].values()) == 1797

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


FAMILIES = ("gan", "vae", "ddpm")


def tiny_graph_params(project: Path) -> dict:
    """params.yaml on TINY (DVC wants every key a stage lists: update section by section)."""
    from tests.integration.conftest import TINY
    from tests.integration.test_evaluate_stage import TINY_EVALUATE

    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in {**TINY, "evaluate": TINY_EVALUATE}.items():
        if isinstance(values, dict):
            params[section] = {**params[section], **values}
        else:
            params[section] = values
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    return params


@pytest.fixture(scope="module")
def repro_once(tmp_path_factory) -> tuple[Path, dict, dict, set[str]]:
    """A copy of the project after one whole `dvc repro` on tiny params, two seeds:
    (project, params, env, every stage's name)."""
    project = copy_project(tmp_path_factory.mktemp("graph") / "repo")
    params = tiny_graph_params(project)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    first = run(["dvc", "repro"], project, env)
    runs = [f"{family}-{seed}" for family in FAMILIES for seed in params["compare"]["seeds"]]
    stages = {"download", "preprocess", "train_evaluator", "evaluate_real", "compare", "report"}
    stages |= {f"{stage}@{name}" for stage in ("train", "evaluate") for name in runs}
    assert ran(first, stages) == stages
    return project, params, env, stages


@pytest.mark.timeout(900)
def test_whole_graph_then_seeds_and_budget_change_only_their_stages(repro_once):
    """Every stage on tiny params; then another seed adds only its stages, fewer seeds only
    change the comparison, a new budget only the trainings (nothing before them)."""
    project, params, env, _ = repro_once
    seeds = params["compare"]["seeds"]
    runs = [f"{family}-{seed}" for family in FAMILIES for seed in seeds]
    page = (project / "reports/index.html").read_text()
    assert all(f"<tr><td>{name}</td>" in page for name in FAMILIES)
    assert f"(95% CI, {len(seeds)} seeds)" in page
    assert "No metrics at HEAD to compare with" in page  # the copy has no commit yet
    assert_report_logged_to_every_run(project, runs)
    shown = run(["dvc", "metrics", "show"], project, env)
    for name in runs:
        assert f"metrics/runs/{name}.json" in shown
    assert "metrics/real.json" in shown and "metrics/compare.json" in shown
    assert "evaluator.fid" in shown
    # quality against compute: the report's first figure, and the same means as DVC plots
    assert page.index('id="compute-figure"') < page.index('id="seeds-figure"')
    plots = json.loads(run(["dvc", "plots", "show", "--json"], project, env))["data"]
    fid = next(v for k, v in plots.items() if k.startswith("FID against training FLOPs"))
    drawn = {
        (row["filename"], row["flops"], row["fid"]) for row in fid[0]["content"]["data"]["values"]
    }
    comparison = json.loads((project / "metrics/compare.json").read_text())
    for family in FAMILIES:
        points = comparison["curve"]["families"][family]
        assert len(points) == 4  # the default snapshots, 1/8 to 1 of the budget
        for point in points:
            want = (f"{family}.csv", str(point["flops"]), str(point["fid"]["mean"]))
            assert want in drawn

    # a training's timings are not inputs of its evaluation (only of the comparison)
    stats = project / "models/gan-0/train_stats.json"
    kept = stats.read_text()
    stats.write_text(json.dumps(json.loads(kept) | {"wall_seconds": 1e6}))
    stale = changed_stages(project, env)
    assert "evaluate@gan-0" not in stale and {"train@gan-0", "compare"} <= stale
    stats.write_text(kept)

    original = (project / "params.yaml").read_text()
    try:
        changed = {**params, "compare": {**params["compare"], "seeds": [*seeds, 7]}}
        (project / "params.yaml").write_text(yaml.safe_dump(changed))
        added = {f"{stage}@{family}-7" for stage in ("train", "evaluate") for family in FAMILIES}
        assert changed_stages(project, env) == added | {"compare"}
        changed["compare"]["seeds"] = seeds[:1]
        (project / "params.yaml").write_text(yaml.safe_dump(changed))
        assert changed_stages(project, env) == {"compare"}
        budget = {"unit": "images", "amount": 480}
        changed["compare"] = {**params["compare"], "budget": budget}
        (project / "params.yaml").write_text(yaml.safe_dump(changed))
        assert changed_stages(project, env) == {f"train@{name}" for name in runs}
        changed["compare"] = {**params["compare"], "snapshots": [0.5]}
        (project / "params.yaml").write_text(yaml.safe_dump(changed))
        assert changed_stages(project, env) == {f"train@{name}" for name in runs}
    finally:
        (project / "params.yaml").write_text(original)
    assert "up to date" in run(["dvc", "status"], project, env)


@pytest.mark.slow
@pytest.mark.timeout(900)  # three more `dvc repro` runs of the tiny graph
def test_num_samples_template_and_family_edits_rerun_only_dependents(repro_once):
    """evaluate.num_samples reruns only evaluation (and what reads it), a template only the
    report, a DDPM params field only the DDPM's stages, compare and the report."""
    project, params, env, stages = repro_once
    seeds = params["compare"]["seeds"]
    runs = [f"{family}-{seed}" for family in FAMILIES for seed in seeds]
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["evaluate"]["num_samples"] = 150
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    second = run(["dvc", "repro"], project, env)
    evaluation = {f"evaluate@{name}" for name in runs} | {"evaluate_real"}
    assert ran(second, stages) == evaluation | {"compare", "report"}
    card = json.loads((project / "metrics/runs/gan-0.protocol.json").read_text())
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
    ddpm = {f"{stage}@ddpm-{seed}" for stage in ("train", "evaluate") for seed in seeds}
    assert changed_stages(project, env) == ddpm
    fourth = run(["dvc", "repro"], project, env)
    assert ran(fourth, stages) == ddpm | {"compare", "report"}


@pytest.mark.timeout(600)
def test_going_back_to_earlier_params_restores_the_training_from_the_run_cache(project):
    """gan.steps 20 -> 30 -> 20: the third `dvc repro` trains nothing, DVC's run cache restores
    the 20-step outputs (every out of the stage is cached)."""
    params = tiny_graph_params(project)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    weights = project / "models/gan-0/weights.safetensors"

    def train(steps: int) -> str:
        params["gan"]["steps"] = steps
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        return run(["dvc", "repro", "train@gan-0"], project, env)

    assert "train@gan-0: 20 steps" in train(20)
    first = weights.read_bytes()
    assert "train@gan-0: 30 steps" in train(30)
    assert weights.read_bytes() != first
    third = train(20)
    assert "Stage 'train@gan-0' is cached - skipping run" in third
    assert "train@gan-0: " not in third  # the stage's own line: it did not train
    assert weights.read_bytes() == first
    stats = json.loads((project / "models/gan-0/train_stats.json").read_text())
    assert stats["steps"] == 20 and (project / "models/gan-0/snapshots/snapshots.json").exists()


def changed_stages(project: Path, env: dict) -> set[str]:
    """What `dvc status` names: the stages whose own deps, params or outs changed."""
    status = run(["dvc", "status", "--json"], project, env).splitlines()
    return set(json.loads(next(line for line in status if line.startswith("{"))))


def assert_report_logged_to_every_run(project: Path, runs: list[str]) -> None:
    """Each trained model's MLflow run holds the report under its `report/` artifacts."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    for name in runs:
        run_id = json.loads((project / f"models/{name}/mlflow_run.json").read_text())["run_id"]
        (execution,) = client.list_artifacts(run_id, "report")  # report/<pipeline id>/
        files = {f.path.rsplit("/", 1)[-1] for f in client.list_artifacts(run_id, execution.path)}
        assert {"index.html", "report.md", "images"} <= files, (name, files)
