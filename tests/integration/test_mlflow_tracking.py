"""MLflow runs checked against a real `mlflow server` on 127.0.0.1, started and stopped here."""

import json
import os

import pytest
from mlflow.tracking import MlflowClient

from tests.integration.conftest import BIN, run_train, tiny_params
from tests.integration.processes import free_port, start, stop, wait_healthy


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


def test_training_run_is_tracked_on_a_real_server(tmp_path, tiny_data, mlflow_server):
    params = tiny_params(tmp_path, gan={"steps": 30})
    run_train("gan", params, tiny_data, tmp_path, tracking_uri=mlflow_server)
    record = json.loads((tmp_path / "models/gan/mlflow_run.json").read_text())
    assert record["tracking_uri"] == mlflow_server
    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["gan.z_dim"] == "8" and run.data.params["gan.widths"] == "[16]"
    assert run.data.params["data.image_size"] == "8" and run.data.params["seed"] == "0"
    tags = run.data.tags
    assert tags["genbench.family"] == "gan" and tags["genbench.dvc_stage"] == "train@gan-0"
    assert tags["genbench.pipeline_id"] == "test-pipeline"
    assert len(tags["genbench.params_hash"]) == 64 and tags["genbench.git_commit"]
    history = client.get_metric_history(run.info.run_id, "loss_d")
    assert [m.step for m in history] == [10, 20, 30]
    assert client.get_metric_history(run.info.run_id, "images_per_second")[-1].value > 0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"samples.png", "weights.safetensors", "config.json", "train_stats.json"} <= artifacts


def test_unreachable_server_stops_before_training(tmp_path, tiny_data):
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_train(
        "vae", tiny_params(tmp_path), tiny_data, tmp_path, tracking_uri=closed, check=False
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and closed in lines[0] and "unreachable" in lines[0]
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "models").exists()
