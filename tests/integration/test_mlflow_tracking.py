"""MLflow runs checked against a real `mlflow server` on 127.0.0.1, started and stopped here:
the training run, its model, an evaluation and comparison beside it, and the UI in Chromium."""

import json
import os
import time

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from genbench import tracking
from genbench.core.checkpoint import load_weights
from genbench.core.store import read_meta
from tests.integration.conftest import BIN, run_train, tiny_params
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
    _, record = trained
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
    assert tags["genbench.pipeline_id"] == tags["genbench.executions"] == "test-pipeline"
    assert len(tags["genbench.params_hash"]) == 64 and tags["genbench.git_commit"]
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
    assert output.model_id == record["model_id"]  # in mlflow_run.json for the evaluation
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
    weights = folder / "models/gan/weights.safetensors"
    return tracking.Evaluation(params, metrics, out, card, weights, tiny_data, read_meta(tiny_data))


def test_evaluations_comparison_and_report_leave_the_training_run_as_it_ended(
    trained, tiny_data, mlflow_server, monkeypatch
):
    """Two evaluations of one model are two runs; a later execution that reuses the model (a
    rerun of another family) tags it; nothing moves the training run's end."""
    root, record = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("GENBENCH_PIPELINE_ID", "test-pipeline")
    client = MlflowClient(tracking_uri=mlflow_server)
    ended = client.get_run(record["run_id"]).info.end_time
    params = root / "params.yaml"
    first = evaluate(record, params, evaluation(root, tiny_data, 12.5, 100))
    second = evaluate(record, params, evaluation(root, tiny_data, 11.0, 200))
    runs = {i: client.get_run(i) for i in (first, second)}
    # nested under the training run in the UI's list (a tag on the evaluation run only), open
    # while the evaluation worked, and its FID shown on the training run's logged model
    assert runs[second].data.tags["mlflow.parentRunId"] == record["run_id"]
    assert runs[second].info.end_time - runs[second].info.start_time >= 300
    model = mlflow.get_logged_model(record["model_id"])
    assert {m.key: m.value for m in model.metrics}["eval/evaluator.fid"] in (12.5, 11.0)
    assert [r.data.metrics["eval/evaluator.fid"] for r in runs.values()] == [12.5, 11.0]
    assert runs[second].data.params["evaluate.num_samples"] == "200"
    assert runs[second].data.params["z_dim"] == "8"  # the training's params, in the same row
    assert runs[second].info.run_name == "eval gan-seed0 · test-pipeline"
    assert runs[second].data.tags["genbench.training_run_id"] == record["run_id"]

    monkeypatch.setenv("GENBENCH_PIPELINE_ID", "exec-2")  # reuses the model and evaluation 2
    compare = root / "compare.json"
    compare.write_text("{}")
    used = {"gan-0": root / "gan-0.200.json"}
    assert tracking.log_comparison(params, {"gan.evaluator.fid.mean": 11.0}, [0], compare, used)
    found = client.search_runs(
        [runs[first].info.experiment_id], "tags.genbench.executions LIKE '%exec-2%'"
    )
    compare_run = next(r for r in found if r.info.run_name == "compare · exec-2")
    assert {r.info.run_id for r in found} == {record["run_id"], second, compare_run.info.run_id}
    assert client.get_run(record["run_id"]).data.tags["genbench.executions"] == (
        "test-pipeline,exec-2"
    )
    listed = mlflow.artifacts.load_dict(f"{compare_run.info.artifact_uri}/runs.json")
    assert listed == {"gan-0": {"training": record["run_id"], "evaluation": second}}

    (root / "report").mkdir()
    (root / "report/index.html").write_text("<html></html>")
    report = tracking.log_report(params, root / "report")  # a run of its own
    assert client.get_run(report["run_id"]).info.run_name == "report · exec-2"
    assert client.list_artifacts(report["run_id"], "report")[0].path.endswith("index.html")
    assert tracking.find_report_run("exec-2") == report
    links = tracking.ui_links(report)
    assert (
        links["report"].startswith(f"{mlflow_server}/#/experiments/")
        and "/artifacts/" in (links["report"])
    )
    after = client.get_run(record["run_id"])
    assert after.info.end_time == ended and after.info.status == "FINISHED"
    assert not client.list_artifacts(record["run_id"], "report")  # no stage writes into it


def evaluate(record: dict, params, found: tracking.Evaluation) -> str:
    """An evaluation's MLflow run as the evaluate stage makes it: open while it works (here a
    0.3 s stand-in for the work), then its results; returns the run's id."""
    with tracking.evaluation_run(record, params) as logging:
        assert logging
        time.sleep(0.3)
        tracking.log_evaluation(record, found)
        return mlflow.active_run().info.run_id


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
