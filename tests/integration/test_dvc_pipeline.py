"""Real `dvc repro` of the data stages in a temporary copy of the repository."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import TinyGraph, copy_project, copy_tree


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
    params["data"]["test_fraction"] = 0.25  # (image_size 8 would be refused: gan.widths fit 16)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    third = run(["dvc", "repro", "preprocess"], project)
    assert ran(third) == {"preprocess"} and "Running stage 'validate'" in third
    meta = json.loads((project / "data/prepared/meta.json").read_text())
    assert meta["test_fraction"] == 0.25 and meta["counts"]["test"] == 450
    assert "up to date" in run(["dvc", "status", "preprocess"], project)


FAMILIES = ("gan", "vae", "ddpm")


@pytest.fixture
def repro_once(tiny_graph: TinyGraph, tmp_path) -> tuple[Path, dict, dict, set[str]]:
    """A copy of the project after one whole `dvc repro` on tiny params, two seeds (the
    session's tiny graph, built once): (project, params, env, every stage's name)."""
    project = copy_tree(tiny_graph.root, tmp_path / "repo")
    params = yaml.safe_load((project / "params.yaml").read_text())
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    runs = [f"{family}-{seed}" for family in FAMILIES for seed in params["compare"]["seeds"]]
    stages = {"download", "preprocess", "train_evaluator", "evaluate_real", "compare", "report"}
    stages |= {f"{stage}@{name}" for stage in ("train", "evaluate") for name in runs}
    assert ran(tiny_graph.output, stages) == stages
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
    assert f"(95% CI, {len(seeds)} seeds;" in page
    assert "genbench diff" in page and "Change since HEAD (" not in page  # not the page's job
    assert_one_execution_and_a_report_run(project, runs)
    # The summary metrics: one small file per family, so the table fits a terminal (plain
    # `dvc metrics show` lists every run's file too: declared metrics for the run cache)
    shown = run(["dvc", "metrics", "show", "metrics/summary"], project, env)
    lines = shown.strip().splitlines()
    assert max(len(line) for line in lines) <= 120, shown
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(
        f"metrics/summary/{family}.json" for family in FAMILIES
    )
    assert lines[0].split()[1:] == [
        "coverage",
        "density",
        "fid",
        "is",
        "kid",
        "precision",
        "recall",
    ]
    assert "metrics/compare.json" not in shown and "metrics/runs" not in shown
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
        assert status_stages(project, env) == added | {"compare", "validate"}
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


def readme_exp_show() -> list[str]:
    """The README's readable `dvc exp show` command, as arguments."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    start = text.index(".venv/bin/dvc exp show --drop")
    command = text[start : text.index("\n```", start)].replace("\\\n", " ")
    return ["dvc", *shlex.split(command)[1:]]


@pytest.mark.timeout(300)
def test_genbench_diff_is_dvc_metrics_diff_and_the_readme_exp_show_is_narrow(repro_once):
    """After a commit, `genbench diff` is what `dvc metrics diff HEAD` gives, judged; the report
    stage does not rerun for it (its output depends on its declared inputs only); and the
    README's `dvc exp show` line gives a short table with each family's mean FID."""
    project, params, env, _ = repro_once
    identity = ["-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "add", "-A"], cwd=project, check=True, capture_output=True)
    subprocess.run(["git", *identity, "commit", "-qm", "tiny"], cwd=project, check=True)

    header = run([*readme_exp_show(), "--csv"], project, env).splitlines()[0].split(",")
    assert header == ["Experiment", *(f"metrics/summary/{f}.json:fid" for f in FAMILIES)]
    table = run(readme_exp_show(), project, {**env, "COLUMNS": "120"})
    assert max(len(line.rstrip()) for line in table.splitlines()) <= 120, table
    assert "report" not in run(["dvc", "status", "report"], project, env)  # HEAD moved: no rerun

    path = project / "metrics/runs/gan-0.json"
    kept = path.read_text()
    metrics = json.loads(kept)
    metrics["scores"]["fid"] += 1.0
    path.write_text(json.dumps(metrics))
    try:
        # a run's file is no longer a DVC metrics file (the summaries are): name it
        targets = ["--targets", "metrics/runs/gan-0.json"]
        diff = json.loads(run(["dvc", "metrics", "diff", "HEAD", *targets, "--json"], project, env))
        markdown = run(["genbench", "diff"], project, env)
    finally:
        path.write_text(kept)
    change = diff["metrics/runs/gan-0.json"]["scores.fid"]
    row = f"| metrics/runs/gan-0.json | scores.fid | {change['old']:,.5g} | {change['new']:,.5g}"
    assert row in markdown and "worse" in markdown.split(row)[1].splitlines()[0]
    assert sum(line.startswith("| metrics/") for line in markdown.splitlines()) == 1


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
    fourth = run(["dvc", "repro"], project, {**env, "GENBENCH_PIPELINE_ID": "ddpm-edit"})
    assert ran(fourth, stages) == ddpm | {"compare", "report"}
    assert_execution_lists_every_model(project, params["compare"]["seeds"], "ddpm-edit")


def assert_execution_lists_every_model(project: Path, seeds: list, execution: str) -> None:
    """The execution that reran only the DDPM's stages lists every family's training and
    evaluation run in its compare run's runs.json, the reused GAN and VAE runs included (made
    by an earlier execution, which keeps its id on them)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("genbench").experiment_id
    query = f"tags.genbench.pipeline_id = '{execution}' and tags.genbench.dvc_stage = 'compare'"
    (compare,) = client.search_runs([experiment], query)
    listed = mlflow.artifacts.load_dict(f"{compare.info.artifact_uri}/runs.json")
    models = listed["models"]
    assert sorted(models) == sorted(f"{family}-{seed}" for family in FAMILIES for seed in seeds)
    made = {
        (found["family"], found[kind]["pipeline_id"] == execution)
        for found in models.values()
        for kind in ("training", "evaluation")
    }
    assert made == {("ddpm", True), ("gan", False), ("vae", False)}
    assert len(client.search_runs([experiment], listed["filter"])) == 2 * len(models)


@pytest.mark.timeout(600)
def test_going_back_to_earlier_params_restores_the_training_from_the_run_cache(repro_once):
    """gan.steps 40 (the tiny graph's) -> 30 -> 40: the last `dvc repro` trains nothing, DVC's
    run cache restores the 40-step outputs (every out of the stage is cached)."""
    project, params, env, _ = repro_once
    weights = project / "models/gan-0/weights.safetensors"
    first = weights.read_bytes()

    def train(steps: int) -> str:
        params["gan"]["steps"] = steps
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        return run(["dvc", "repro", "train@gan-0"], project, env)

    assert "train@gan-0: 30 steps" in train(30)
    assert weights.read_bytes() != first
    third = train(40)
    assert "Stage 'train@gan-0' is cached - skipping run" in third
    assert "train@gan-0: " not in third  # the stage's own line: it did not train
    assert weights.read_bytes() == first
    stats = json.loads((project / "models/gan-0/train_stats.json").read_text())
    assert stats["steps"] == 40 and (project / "models/gan-0/snapshots/snapshots.json").exists()


def status_stages(project: Path, env: dict) -> set[str]:
    """What `dvc status` names: the stages whose own deps, params or outs changed."""
    status = run(["dvc", "status", "--json"], project, env).splitlines()
    return set(json.loads(next(line for line in status if line.startswith("{"))))


def changed_stages(project: Path, env: dict) -> set[str]:
    """status_stages without `validate`: it reads the whole params.yaml, so every params edit
    names it (its output never changes, so it adds nothing downstream; checked on its own)."""
    return status_stages(project, env) - {"validate"}


def assert_one_execution_and_a_report_run(project: Path, runs: list[str]) -> None:
    """Every MLflow run of one `dvc repro` carries one execution id; the report is a run of its
    own (the training runs hold no report), its artifacts the whole report folder."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("genbench").experiment_id
    every = client.search_runs([experiment], max_results=1000)
    assert len({r.data.tags["genbench.pipeline_id"] for r in every}) == 1
    (report,) = [r for r in every if r.data.tags.get("genbench.dvc_stage") == "report"]
    files = {f.path.rsplit("/", 1)[-1] for f in client.list_artifacts(report.info.run_id, "report")}
    assert {"index.html", "report.md", "images"} <= files, files
    for name in runs:
        run_id = json.loads((project / f"models/{name}/mlflow_run.json").read_text())["run_id"]
        assert not client.list_artifacts(run_id, "report"), name
