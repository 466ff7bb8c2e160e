"""The real train stage: outputs, resume after SIGKILL, NaN guard, DDP, bad params, sampling."""

import json
import re
import subprocess
import time

import pytest
import torch

from genbench.core import checkpoint
from genbench.families import load_family
from tests.integration.conftest import BIN, TINY, run_train, stage_env, tiny_params, train_cmd


def weights(model_dir):
    return checkpoint.load_weights(model_dir / "weights.safetensors")


@pytest.mark.parametrize("model", ["gan", "vae", "ddpm"])
def test_stage_writes_the_model_folder(tmp_path, tiny_data, model):
    params = tiny_params(tmp_path)
    result = run_train(model, params, tiny_data, tmp_path)
    out = tmp_path / "models" / model
    assert {p.name for p in out.iterdir()} == {
        "weights.safetensors",
        "config.json",
        "samples.png",
        "train_stats.json",
        "losses.csv",
        "mlflow_run.json",
        "snapshots",
    }
    stats = json.loads((out / "train_stats.json").read_text())
    assert stats["steps"] == 40
    # the default snapshots, 1/8, 1/4 and 1/2 of 40 steps (the last: weights.safetensors)
    index = json.loads((out / "snapshots/snapshots.json").read_text())
    assert [(row["step"], row["file"]) for row in index] == [
        (5, "step-0000005.safetensors"),
        (10, "step-0000010.safetensors"),
        (20, "step-0000020.safetensors"),
        (40, None),
    ]
    assert all(row["flops"] == row["step"] * stats["flops_per_step"] for row in index)
    assert set(stats["snapshot_seconds"]) == {"5", "10", "20"}
    assert stats["images_per_second"] == pytest.approx(40 * 16 / stats["wall_seconds"], rel=0.01)
    family = load_family(model)
    parts = family.build(family.params(**TINY[model]), 1, 8)
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.modules.items()}
    assert stats["parameter_count"] == counts
    config = json.loads((out / "config.json").read_text())
    assert config["family"] == model and config["data"]["image_size"] == 8
    assert config["parameter_count"] == counts  # evaluation's cost reads it (no timings there)
    # the weights users share: safetensors (no pickle), the generating network's state dict
    assert (out / "weights.safetensors").read_bytes()[8:9] == b"{"  # a JSON header, not a zip
    generating = family.build_generating(family.params(**TINY[model]), 1, 8).state_dict()
    assert weights(out).keys() == generating.keys()
    assert f"train@{model}" in result.stdout


# vae and ddpm: slow (the same engine code; the GAN alone keeps the default suite short)
@pytest.mark.parametrize(
    "model",
    [
        "gan",
        pytest.param("vae", marks=pytest.mark.slow),
        pytest.param("ddpm", marks=pytest.mark.slow),
    ],
)
def test_killed_and_resumed_run_is_bit_identical(tmp_path, tiny_data, model):
    """SIGKILL after the first checkpoint, rerun: the final weights equal an uninterrupted run's."""
    sections = {model: {"steps": 400, "checkpoint_every": 50}}
    params = tiny_params(tmp_path, **sections)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    whole.mkdir(), broken.mkdir()
    run_train(model, params, tiny_data, whole)

    ckpt = broken / "checkpoints" / model / "last.pt"
    proc = subprocess.Popen(
        train_cmd(model, params, tiny_data, broken),
        cwd=broken,
        env=stage_env(broken),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    killed_at = checkpoint.load(ckpt)["step"]
    assert killed_at < 400, "the run finished before it could be killed; raise steps"
    assert not (broken / "models" / model).exists()

    resumed = run_train(model, params, tiny_data, broken)
    assert f"continuing from step {killed_at}" in resumed.stdout
    stats = json.loads((broken / "models" / model / "train_stats.json").read_text())
    assert (
        stats["resumed_from_step"] == killed_at and stats["steps_this_session"] == 400 - killed_at
    )
    a, b = weights(whole / "models" / model), weights(broken / "models" / model)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_nan_guard_stops_the_stage_without_outputs(tmp_path, tiny_data):
    """A learning rate far too high: the stage names the step, keeps the last good checkpoint."""
    params = tiny_params(tmp_path, vae={"lr": 0.5, "steps": 200, "checkpoint_every": 1})
    result = run_train("vae", params, tiny_data, tmp_path, check=False)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    match = re.fullmatch(
        r"error: step (\d+): (\w+ = (nan|inf|-inf)|weights became non-finite);.*", error
    )
    assert match, error
    assert checkpoint.load(tmp_path / "checkpoints/vae/last.pt")["step"] < int(match.group(1))
    assert not (tmp_path / "models").exists()


def test_widths_that_do_not_fit_the_image_size_exit_2(tmp_path, tiny_data):
    params = tiny_params(tmp_path, gan={"widths": [16, 8]})
    result = run_train("gan", params, tiny_data, tmp_path, check=False)
    assert result.returncode == 2
    assert "gan.widths" in result.stderr and "image_size 8 needs 1" in result.stderr
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    "model",
    [
        "gan",
        pytest.param("vae", marks=pytest.mark.slow),
        pytest.param("ddpm", marks=pytest.mark.slow),
    ],
)
def test_ddp_two_cpu_processes(tmp_path, tiny_data, model):
    """torchrun with 2 gloo processes: same global batch, rank 0 alone writes and logs."""
    params = tiny_params(tmp_path, **{model: {"steps": 20, "checkpoint_every": 10}})
    launcher = (str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2")
    run_train(model, params, tiny_data, tmp_path, launcher=launcher)
    stats = json.loads((tmp_path / "models" / model / "train_stats.json").read_text())
    assert stats["world_size"] == 2 and stats["batch_size"] == 16
    state = checkpoint.load(tmp_path / "checkpoints" / model / "last.pt")
    assert state["world_size"] == 2 and state["step"] == 20
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(mlflow.search_runs(experiment_names=["genbench"])) == 1


@pytest.mark.slow  # suite time; seeded sampling: tests/unit/test_ddpm.py, errors: test_integrity.py
def test_sample_command_is_reproducible(tmp_path, tiny_data):
    run_train("gan", tiny_params(tmp_path), tiny_data, tmp_path)
    model = tmp_path / "models" / "gan"

    def sample(out, seed):
        cmd = [
            str(BIN / "genbench"),
            "sample",
            "--model",
            str(model),
            "--n",
            "16",
            "--out",
            str(out),
            "--seed",
            str(seed),
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        return out.read_bytes()

    first, again, other = (
        sample(tmp_path / f"{n}.png", s) for n, s in (("a", 3), ("b", 3), ("c", 4))
    )
    assert first == again and first != other


@pytest.mark.slow
def test_sample_command_ddpm_samplers(tmp_path, tiny_data):
    run_train("ddpm", tiny_params(tmp_path), tiny_data, tmp_path)
    model = str(tmp_path / "models" / "ddpm")

    def sample(*extra):
        cmd = [str(BIN / "genbench"), "sample", "--model", model, "--n", "4", "--seed", "1", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    ddim = sample("--out", str(tmp_path / "ddim.png"), "--sampler", "ddim", "--steps", "3")
    ancestral = sample("--out", str(tmp_path / "anc.png"), "--sampler", "ancestral")
    assert ddim.returncode == 0 and ancestral.returncode == 0, ddim.stderr + ancestral.stderr
    assert (tmp_path / "ddim.png").read_bytes() != (tmp_path / "anc.png").read_bytes()
    too_many = sample("--out", str(tmp_path / "x.png"), "--steps", "500")
    assert (
        too_many.returncode == 2
        and "ddpm.sample_steps = 500: must be at most num_train_timesteps = 50" in too_many.stderr
    )
