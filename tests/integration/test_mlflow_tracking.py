"""MLflow runs checked against a real `mlflow server` on 127.0.0.1, started and stopped here:
the training run, its model, an evaluation and comparison beside it, and the UI in Chromium."""

import json
import os
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from genbench import tracking
from genbench.core.checkpoint import load_weights
from genbench.core.files import sha256_file
from genbench.core.store import read_meta
from tests.integration.conftest import (
    BIN,
    TINY,
    TINY_EVALUATE,
    copy_project,
    project_env,
    run_train,
    set_params,
    tiny_params,
)
from tests.integration.processes import free_port, start, stop, wait_healthy
from tests.integration.test_report_browser import FLAGS, chromium


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = start(command, root, env, root / "log")
    wait_healthy(url, proc, root / "log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data, mlflow_server):
    """A tiny GAN trained by the real stage into the server: (folder, its mlflow_run.json)."""
    root = tmp_path_factory.mktemp("trained")
    params = tiny_params(root, gan={"steps": 30})
    with pytest.MonkeyPatch.context() as patch:  # samples often enough for a seconds-long run
        patch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
        run_train("gan", params, tiny_data, root, tracking_uri=mlflow_server)
    return root, json.loads((root / "models/gan/mlflow_run.json").read_text())


def test_training_run_is_tracked_on_a_real_server(trained, tiny_data, mlflow_server):
    root, record = trained
    assert record["tracking_uri"] == mlflow_server
    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "gan-seed0 · test-pipeline"
    params = run.data.params  # the engine's names, shared by every family: no `gan.` prefix
    assert params["z_dim"] == "8" and params["widths"] == "[16]" and params["steps"] == "30"
    assert params["batch_size"] == "16" and "ema_decay" in params and "gan.z_dim" not in params
    assert params["budget.steps"] == "30" and params["data.image_size"] == "8"
    assert params["budget.unit"] == "steps" and "budget.budget.unit" not in params
    assert params["seed"] == "0"
    tags = run.data.tags
    assert tags["genbench.family"] == "gan" and tags["genbench.dvc_stage"] == "train@gan-0"
    assert tags["genbench.pipeline_id"] == "test-pipeline" and tags["genbench.git_commit"]
    assert tags["genbench.weights_sha256"] == sha256_file(root / "models/gan/weights.safetensors")
    history = client.get_metric_history(run.info.run_id, "train/loss_d")
    assert [m.step for m in history] == [10, 20, 30]
    assert client.get_metric_history(run.info.run_id, "train/images_per_second")[-1].value > 0
    # the learning rate at every logged step, one curve per optimizer
    lr = client.get_metric_history(run.info.run_id, "train/lr_generator")
    assert [m.step for m in lr] == [10, 20, 30] and lr[-1].value > 0
    assert "system/cpu_utilization_percentage" in run.data.metrics
    # MLflow 3's UI opens the experiment on runs and charts, not its GenAI views
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"samples.png", "weights.safetensors", "config.json", "train_stats.json"} <= artifacts
    (data,) = run.inputs.dataset_inputs
    sha = read_meta(tiny_data)["sha256"]["train_images.npy"]
    assert data.dataset.name == "digits-8px/train" and data.dataset.digest == sha[:32]
    assert {t.key: t.value for t in data.tags}["sha256"] == sha
    assert {t.key: t.value for t in data.tags}["mlflow.data.context"] == "training"


def test_logged_model_samples_and_registers(trained, mlflow_server):
    root, record = trained
    mlflow.set_tracking_uri(mlflow_server)
    run = mlflow.get_run(record["run_id"])
    (output,) = run.outputs.model_outputs
    assert output.model_id == record["model_id"]  # also in mlflow_run.json
    assert mlflow.get_logged_model(output.model_id).name == "gan-seed0"  # not `model`
    generator = mlflow.pytorch.load_model(f"models:/{output.model_id}")
    weights = load_weights(root / "models/gan/weights.safetensors")
    assert all(torch.equal(generator.state_dict()[k], v) for k, v in weights.items())
    assert generator(torch.zeros(2, 8)).shape == (2, 1, 8, 8)  # z_dim 8 -> 8×8 images
    version = mlflow.register_model(f"models:/{output.model_id}", "genbench-gan")
    assert version.version == "1" and version.run_id == record["run_id"]


def evaluation(folder, tiny_data, fid: float, num_samples: int) -> tracking.Evaluation:
    """One evaluation's files and values, as the evaluate stage hands them to tracking."""
    metrics = {"evaluator": {"fid": fid}}
    out = folder / f"gan-0.{num_samples}.json"
    out.write_text(json.dumps(metrics))
    card = folder / "gan-0.protocol.json"
    card.write_text(json.dumps({"num_samples": num_samples}))
    params = {"num_samples": num_samples, "batch_size": 64}
    return tracking.Evaluation(params, metrics, out, card, tiny_data, read_meta(tiny_data))


def test_evaluations_comparison_and_report_find_earlier_runs_by_content(
    trained, tiny_data, mlflow_server, monkeypatch
):
    """Two evaluations of one model are two runs, nested under the training run that logged
    the same weights; a later execution that reuses the model (a rerun of another family) lists
    its runs in its compare run's runs.json; none of them changes the training run."""
    root, record = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("GENBENCH_PIPELINE_ID", "test-pipeline")
    client = MlflowClient(tracking_uri=mlflow_server)
    before = snapshot(client, record["run_id"])
    params, model = root / "params.yaml", root / "models/gan"
    first = evaluate(model, params, evaluation(root, tiny_data, 12.5, 100), record)
    second = evaluate(model, params, evaluation(root, tiny_data, 11.0, 200), record)
    runs = {i: client.get_run(i) for i in (first, second)}
    # nested under the training run in the UI's list (a tag on the evaluation run only), open
    # while the evaluation worked, and its FID shown on the training run's logged model
    assert runs[second].data.tags["mlflow.parentRunId"] == record["run_id"]
    assert runs[second].info.end_time - runs[second].info.start_time >= 300
    logged = mlflow.get_logged_model(record["model_id"])
    assert {m.key: m.value for m in logged.metrics}["eval/evaluator.fid"] in (12.5, 11.0)
    assert [r.data.metrics["eval/evaluator.fid"] for r in runs.values()] == [12.5, 11.0]
    assert runs[second].data.params["evaluate.num_samples"] == "200"
    assert "z_dim" not in runs[second].data.params  # the training's params stay on its run
    assert runs[second].info.run_name == "eval gan-seed0 · test-pipeline"
    tags = runs[second].data.tags
    assert tags["genbench.training_run_id"] == record["run_id"]
    assert tags["genbench.family"] == "gan" and tags["genbench.seed"] == "0"
    assert tags["genbench.weights_sha256"] == sha256_file(model / "weights.safetensors")
    assert tags["genbench.dvc_stage"] == "evaluate@gan-0"

    monkeypatch.setenv("GENBENCH_PIPELINE_ID", "exec-2")  # reuses the model and evaluation 2
    compare = root / "compare.json"
    compare.write_text("{}")
    used = {"gan-0": root / "gan-0.200.json", "vae-0": root / "params.yaml"}  # vae: no run
    assert tracking.log_comparison(params, {"gan.evaluator.fid.mean": 11.0}, [0], compare, used)
    experiment = runs[first].info.experiment_id
    (compare_run,) = client.search_runs([experiment], "tags.genbench.pipeline_id = 'exec-2'")
    assert compare_run.info.run_name == "compare · exec-2"
    assert compare_run.data.tags["genbench.compare_sha256"] == sha256_file(compare)
    listed = mlflow.artifacts.load_dict(f"{compare_run.info.artifact_uri}/runs.json")
    assert listed["models"]["gan-0"] == {
        "family": "gan",
        "seed": "0",
        "metrics_sha256": sha256_file(root / "gan-0.200.json"),
        "weights_sha256": sha256_file(model / "weights.safetensors"),
        "evaluation": {"run_id": second, "pipeline_id": "test-pipeline"},
        "training": {
            "run_id": record["run_id"],
            "pipeline_id": "test-pipeline",
            "model_id": record["model_id"],
        },
    }
    assert listed["models"]["vae-0"]["evaluation"] is None
    # its filter lists every run the execution compared, the reused ones included
    found = client.search_runs([experiment], listed["filter"])
    assert {r.info.run_id for r in found} == {record["run_id"], second}

    (root / "report").mkdir()
    (root / "report/index.html").write_text("<html></html>")
    report = tracking.log_report(params, root / "report", compare)  # a run of its own
    report_run = client.get_run(report["run_id"])
    assert report_run.info.run_name == "report · exec-2"
    assert report_run.data.tags["genbench.compare_sha256"] == sha256_file(compare)
    assert client.list_artifacts(report["run_id"], "report")[0].path.endswith("index.html")
    assert tracking.find_report_run("exec-2") == report
    links = tracking.ui_links(report)
    assert (
        links["report"].startswith(f"{mlflow_server}/#/experiments/")
        and "/artifacts/" in (links["report"])
    )
    assert snapshot(client, record["run_id"]) == before  # no stage wrote to it


def test_an_evaluation_without_its_training_run_is_logged_unnested(
    trained, tiny_data, mlflow_server, monkeypatch, tmp_path, capsys
):
    """Weights no training run in the store logged (a store reset since): the evaluation still
    logs its run, not nested, and says so in one line."""
    root, _ = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    model = tmp_path / "models/gan"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"family": "gan", "seed": 3}))
    (model / "weights.safetensors").write_bytes(b"not the trained weights")
    found = evaluation(root, tiny_data, 13.0, 50)
    run_id = evaluate(model, root / "params.yaml", found, {"run_id": None, "model_id": None})
    run = MlflowClient(tracking_uri=mlflow_server).get_run(run_id)
    assert "mlflow.parentRunId" not in run.data.tags and run.info.status == "FINISHED"
    assert run.data.metrics["eval/evaluator.fid"] == 13.0
    assert run.info.run_name.startswith("eval gan-seed3 · ")
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("mlflow:")]
    assert "no training run" in line and "not nested" in line


def evaluate(model, params, found: tracking.Evaluation, training: dict) -> str:
    """An evaluation's MLflow run as the evaluate stage makes it: open while it works (here a
    0.3 s stand-in for the work), then its results; returns the run's id. `training`: the
    training run and model it must find."""
    with tracking.evaluation_run(model, params) as record:
        assert record == {"run_id": training["run_id"], "model_id": training["model_id"]}
        time.sleep(0.3)
        tracking.log_evaluation(record, found)
        return mlflow.active_run().info.run_id


def snapshot(client: MlflowClient, run_id: str) -> dict:
    """All a stage could change on a run: status, times, tags, params, every metric's whole
    history, inputs, outputs and top-level artifacts."""
    run = client.get_run(run_id)
    info = run.info
    history = {
        key: [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)]
        for key in run.data.metrics
    }
    return {
        "info": (info.status, info.start_time, info.end_time, info.run_name, info.lifecycle_stage),
        "tags": run.data.tags,
        "params": run.data.params,
        "metrics": history,
        "inputs": repr(run.inputs),
        "outputs": repr(run.outputs),
        "artifacts": sorted(a.path for a in client.list_artifacts(run_id)),
    }


def every_run(client: MlflowClient) -> dict[str, dict]:
    """A snapshot of every run in the store, deleted ones included, by run id."""
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=1000)
    return {run.info.run_id: snapshot(client, run.info.run_id) for run in runs}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_no_stage_writes_to_another_stages_run(tmp_path, mlflow_server):
    """The real stages one after another (`dvc repro` in a copy of the project, one seed),
    against the server; then a second execution that reruns the GAN alone. Before each step
    every run in the store is snapshot: after it, each is exactly as it was, and the step's
    own runs are the only new ones (tagged with its execution)."""
    root = copy_project(tmp_path / "repo")
    set_params(
        root, {**TINY, "evaluate": TINY_EVALUATE, "compare": {**TINY["compare"], "seeds": [0]}}
    )
    env = {**project_env(root), "MLFLOW_TRACKING_URI": mlflow_server}
    client = MlflowClient(tracking_uri=mlflow_server)
    models = ("gan-0", "vae-0", "ddpm-0")
    steps = [
        ("first", ["--glob", "train@*"], {f"train@{model}" for model in models}),
        ("first", ["--glob", "evaluate@*"], {f"evaluate@{model}" for model in models}),
        ("first", ["compare"], {"compare"}),
        ("first", ["report"], {"report"}),
        ("second", [], {"train@gan-0", "evaluate@gan-0", "compare", "report"}),
    ]
    for execution, targets, made in steps:
        if execution == "second":
            set_params(root, {"gan": {"lr_g": 0.0004}})
        before = every_run(client)
        repro = ["dvc", "repro", *targets]
        done = subprocess.run(
            repro,
            cwd=root,
            env={**env, "GENBENCH_PIPELINE_ID": execution},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{repro}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        after = every_run(client)
        assert {i: after[i] for i in before} == before, repro
        new = [after[i]["tags"] for i in after.keys() - before.keys()]
        assert sorted(t["genbench.dvc_stage"] for t in new) == sorted(made), repro
        assert {t["genbench.pipeline_id"] for t in new} == {execution}
    # the second compare run lists the reused VAE and DDPM runs, made by the first execution
    experiment = client.get_experiment_by_name("genbench").experiment_id
    query = "tags.genbench.pipeline_id = 'second' and tags.genbench.dvc_stage = 'compare'"
    (second,) = client.search_runs([experiment], query)
    listed = json.loads(
        Path(client.download_artifacts(second.info.run_id, "runs.json")).read_text()
    )
    made_by = {
        m: (r["training"]["pipeline_id"], r["evaluation"]["pipeline_id"])
        for m, r in listed["models"].items()
    }
    assert made_by == {"gan-0": ("second",) * 2, "vae-0": ("first",) * 2, "ddpm-0": ("first",) * 2}
    assert len(client.search_runs([experiment], listed["filter"])) == 2 * len(models)


def text_of(page) -> str:
    return page.evaluate("document.body.innerText")


def test_mlflow_ui_lists_the_runs_and_shows_their_params(trained, mlflow_server):
    """The MLflow UI (a JavaScript app) rendered by headless Chromium from the real server:
    the experiment's runs list shows the run by name, its page the shared `steps` param."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    _, record = trained
    experiment, run_id = record["experiment_id"], record["run_id"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{mlflow_server}/#/experiments/{experiment}/runs", timeout=120_000)
            page.get_by_text("gan-seed0 · test-pipeline").first.wait_for(timeout=120_000)
            listed = text_of(page)
            page.goto(f"{mlflow_server}/#/experiments/{experiment}/runs/{run_id}")
            page.get_by_text("budget.steps").first.wait_for(timeout=120_000)
            shown = text_of(page)
            # the Models tab: the logged model under its family-and-seed name
            page.goto(f"{mlflow_server}/#/experiments/{experiment}/models")
            page.get_by_text("gan-seed0", exact=True).first.wait_for(timeout=120_000)
            models = text_of(page)
        finally:
            browser.close()
    assert "gan-seed0 · test-pipeline" in listed
    assert "gan-seed0" in models.splitlines()
    lines = shown.splitlines()
    assert "steps" in lines and "z_dim" in lines and "genbench.family" in shown, shown[:3000]


def test_unreachable_server_stops_before_training(tmp_path, tiny_data):
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_train(
        "vae", tiny_params(tmp_path), tiny_data, tmp_path, tracking_uri=closed, check=False
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and closed in lines[0] and "unreachable" in lines[0]
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "models").exists()
