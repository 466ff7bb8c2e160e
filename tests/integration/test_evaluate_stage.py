"""The real evaluator and evaluate stages: accuracy, metric ordering, outputs, MLflow, errors."""

import json
import shutil
import sys

import mlflow
import pytest
import torch
import yaml

from genbench.config.data import DataParams
from genbench.config.evaluate import EvaluateParams
from genbench.core.files import sha256_file
from genbench.core.store import load_split, read_meta, write_meta, write_split
from genbench.data.download import download
from genbench.data.preprocess import preprocess
from genbench.evaluation.card import protocol_id
from genbench.evaluation.extractor import prepare_extractor
from genbench.families.common.model_dir import load_model, sample_images
from genbench.metrics.fidelity import extract_features, fid, open_extractor
from tests.conftest import ROOT
from tests.integration.conftest import TINY_EVALUATE, run_command, run_train, tiny_params

CURVE = TINY_EVALUATE["curve_samples"]  # images per point of the curve


def run_stage(script: str, args: list, root, check=True):
    return run_command([sys.executable, ROOT / "stages" / script, *args], root, check=check)


def evaluate_params(tmp_path, **evaluate):
    path = tiny_params(tmp_path)
    params = yaml.safe_load(path.read_text())
    params["evaluate"] = {**TINY_EVALUATE, **evaluate}
    path.write_text(yaml.safe_dump(params))
    return path


def with_val_split(data, out, size=100):
    """A copy of prepared data whose last `size` train images became a val split."""
    shutil.copytree(data, out)
    meta = read_meta(out)
    # copies: the files are memory-mapped, and rewriting a mapped file under it crashes
    images, labels = (t.numpy().copy() for t in load_split(out, "train"))
    for split, part in (("train", slice(None, -size)), ("val", slice(-size, None))):
        meta["sha256"].update(write_split(out, split, images[part], labels[part]))
        meta["counts"][split] = len(images[part])
    write_meta(out, meta)
    return out


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_data):
    """A tiny VAE, a tiny evaluator and the evaluate stage run on both, in one folder, on data
    with a val split."""
    root = tmp_path_factory.mktemp("evaluated")
    tiny_data = with_val_split(tiny_data, root / "prepared")
    params = evaluate_params(root)
    values = yaml.safe_load(params.read_text())
    values["vae"].update(steps=2000, batch_size=64, z_dim=8)  # a VAE that learned something
    params.write_text(yaml.safe_dump(values))
    run_train("vae", params, tiny_data, root)
    run_stage(
        "train_evaluator.py",
        ["--params", params, "--data", tiny_data, "--out", root / "evaluator"],
        root,
    )
    args = [
        "--params",
        params,
        "--data",
        tiny_data,
        "--evaluator",
        root / "evaluator",
        "--cache",
        root / "cache",
    ]
    run_stage(
        "evaluate.py",
        [
            *args,
            "--model",
            root / "models/vae",
            "--out",
            root / "m/vae.json",
            "--card",
            root / "m/vae.protocol.json",
            "--figures",
            root / "fig/vae",
        ],
        root,
    )
    run_stage(
        "evaluate.py",
        [*args, "--out", root / "m/real.json", "--card", root / "m/real.card.json"]
        + ["--figures", root / "fig/real"],
        root,
    )
    return root, params, tiny_data


@pytest.mark.slow
def test_evaluator_reaches_97_percent_on_the_digits(tmp_path):
    params = DataParams(source="digits", image_size=16)
    download(params, tmp_path / "raw")
    preprocess(tmp_path / "raw", tmp_path / "prepared", params, seed=0)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 0}))  # the default evaluator params
    run_stage(
        "train_evaluator.py",
        ["--params", path, "--data", tmp_path / "prepared", "--out", tmp_path / "evaluator"],
        tmp_path,
    )
    info = json.loads((tmp_path / "evaluator/evaluator.json").read_text())
    assert info["test_accuracy"] >= 0.97


def test_fid_orders_real_model_and_noise(evaluated):
    root, params, tiny_data = evaluated
    cfg = EvaluateParams(**TINY_EVALUATE)
    extractor = prepare_extractor(cfg, root / "evaluator", cuda=False)
    test, _ = load_split(tiny_data, "test")
    train, _ = load_split(tiny_data, "train")
    vae = load_model(root / "models/vae")
    noise = torch.randint(
        0, 256, (200, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )
    sets = {
        "real": train[:200].clone(),
        "model": sample_images(vae.family, vae.net, vae.params, 200, 0),
        "noise": noise,
    }
    module = open_extractor(extractor.fidelity_name, cuda=False)
    reference = extract_features(test, module, False, 64)
    scores = {
        name: fid(extract_features(images, module, False, 64), reference)
        for name, images in sets.items()
    }
    assert scores["real"] < scores["model"] < scores["noise"], scores


def test_metrics_and_protocol_card(evaluated):
    root, _, data = evaluated
    vae = json.loads((root / "m/vae.json").read_text())
    # the memorisation block and the val split's FID/KID are new; precision/recall now come on
    # equal-size sets with density and coverage, each the mean (and *_std) over the repeats
    assert set(vae) == {
        "extractor", "scores", "spaces", "ssim", "cost", "memorisation", "val", "curve", "protocol"
    }  # fmt: skip
    prdc = {f"{m}{s}" for m in ("precision", "recall", "density", "coverage") for s in ("", "_std")}
    assert vae["extractor"] == "evaluator"  # the primary space: a field, not part of a key
    assert set(vae["scores"]) == {"fid", "kid_mean", "kid_std", "is_mean", "is_std", *prdc}
    # the second feature space (the default's random CNN): the same but IS (it has no classes)
    assert set(vae["spaces"]) == {"random-cnn"}
    assert set(vae["spaces"]["random-cnn"]) == {"fid", "kid_mean", "kid_std", *prdc}
    assert vae["spaces"]["random-cnn"]["fid"] != vae["scores"]["fid"]
    assert set(vae["val"]) == {"fid", "kid_mean", "kid_std"}
    assert vae["val"]["fid"] != vae["scores"]["fid"]  # another reference
    memo = vae["memorisation"]
    assert 0 <= memo["copy_rate"] <= 1 and memo["median_test_to_train"] > memo["threshold"] > 0
    assert 0 < vae["ssim"]["reconstruction"] <= 1 and "diversity_real" in vae["ssim"]
    stats = json.loads((root / "models/vae/train_stats.json").read_text())
    assert "train_seconds" not in vae["cost"]  # not evaluation's input: compare joins them
    assert vae["cost"]["train_flops"] == stats["train_flops"]
    whole = sum(stats["parameter_count"].values())  # the VAE: all of it generates
    assert vae["cost"]["parameters"] == vae["cost"]["generator_parameters"] == whole
    real = json.loads((root / "m/real.json").read_text())
    assert real["extractor"] == "evaluator" and real["scores"]["fid"] < vae["scores"]["fid"]
    assert "memorisation" not in real  # its samples are training images: no copy rate
    assert abs(real["scores"]["kid_mean"]) <= 2 * real["scores"]["kid_std"]
    card = json.loads((root / "m/vae.protocol.json").read_text())
    assert vae["protocol"]["id"] == protocol_id(card)  # the digest of the card beside it
    info = json.loads((root / "evaluator/evaluator.json").read_text())
    assert card["num_samples"] == 200 and card["reference"]["split"] == "test"
    assert card["protocol"] == "custom" and not card["comparable_with_papers"]
    assert card["kid"]["subset_size"] == 100 and card["kid"]["subsets"] == 10  # min(100, 360/2)
    assert card["prdc"]["set_size"] == 200
    assert card["prdc"]["repeats"] == TINY_EVALUATE["prc_repeats"]
    assert (
        card["memorisation"]["percentile"] == 1.0
        and card["memorisation"]["pool"]["split"] == "train"
    )
    assert card["val"]["size"] == 100 and card["val"]["kid_subset_size"] == 50
    assert card["val"]["sha256"] == read_meta(data)["sha256"]["val_images.npy"]
    real_card = json.loads((root / "m/real.card.json").read_text())
    assert real_card["real_floor"] == {"split": "train", "count": 200}
    assert not real_card["memorisation"]["computed"] and real_card["num_samples"] == 200
    assert card["feature_extractor"] == {
        "name": "evaluator",
        "weights_sha256": info["weights_sha256"],
    }
    assert set(card["versions"]) == {"torch", "torch-fidelity", "torchmetrics", "diffusers", "prdc"}
    assert "gaussian window 7" in card["ssim"]


def test_every_snapshot_is_a_point_of_the_curve_and_the_floor_is_scored_alike(evaluated):
    root, _, _ = evaluated
    vae = json.loads((root / "m/vae.json").read_text())
    stats = json.loads((root / "models/vae/train_stats.json").read_text())
    curve = vae["curve"]
    assert curve["extractor"] == "evaluator" and curve["samples"] == CURVE
    points = curve["points"]
    # the default snapshots of 2000 steps: 1/8, 1/4, 1/2 and the final weights
    assert [p["step"] for p in points] == [250, 500, 1000, 2000]
    assert [p["flops"] for p in points] == [p["step"] * stats["flops_per_step"] for p in points]
    assert points[-1]["flops"] == stats["train_flops"]
    assert sorted(p.name for p in (root / "models/vae/snapshots").glob("*.safetensors")) == [
        "step-0000250.safetensors",
        "step-0000500.safetensors",
        "step-0001000.safetensors",
    ]
    assert set(stats["snapshot_seconds"]) == {"250", "500", "1000"}
    fids = [p["fid"] for p in points]
    assert len(set(fids)) == 4 and all(f > 0 for f in fids)
    # fewer images than the full evaluation: the same weights score a higher (biased) FID
    assert fids[-1] != vae["scores"]["fid"]
    real = json.loads((root / "m/real.json").read_text())
    assert real["curve_floor"]["samples"] == CURVE and real["curve_floor"]["fid"] < min(fids)
    card = json.loads((root / "m/vae.protocol.json").read_text())
    assert card["curve"]["samples"] == CURVE and card["curve"]["kid_subset_size"] == CURVE // 2


def test_evaluation_is_a_run_of_its_own_beside_the_training_run(evaluated):
    root, _, data = evaluated
    record = json.loads((root / "models/vae/mlflow_run.json").read_text())
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    training = mlflow.get_run(record["run_id"])
    (run,) = mlflow.search_runs(
        [training.info.experiment_id],
        f"tags.genbench.training_run_id = '{training.info.run_id}'",
        output_format="list",
    )
    assert run.info.run_name == "eval vae-seed0 · test-pipeline" and run.info.status == "FINISHED"
    assert run.data.metrics["eval/scores.fid"] == pytest.approx(
        json.loads((root / "m/vae.json").read_text())["scores"]["fid"]
    )
    # quality against compute: one value per snapshot, the training FLOPs as the step
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "eval/curve.fid")
    points = json.loads((root / "m/vae.json").read_text())["curve"]["points"]
    assert sorted((m.step, m.value) for m in history) == [(p["flops"], p["fid"]) for p in points]
    # its own params only: the training's stay on the training run
    assert "z_dim" not in run.data.params and run.data.params["evaluate.num_samples"] == "200"
    tags = run.data.tags
    assert tags["genbench.weights_sha256"] == sha256_file(root / "models/vae/weights.safetensors")
    assert tags["genbench.metrics_sha256"] == sha256_file(root / "m/vae.json")
    assert tags["genbench.protocol_id"] == str(
        json.loads((root / "m/vae.json").read_text())["protocol"]["id"]
    )
    (used,) = run.inputs.dataset_inputs  # the reference split
    assert used.dataset.name == "digits-8px/test"
    assert used.dataset.digest == read_meta(data)["sha256"]["test_images.npy"][:32]
    # nested under the training run, a grid of samples per snapshot at its training step
    assert tags["mlflow.parentRunId"] == training.info.run_id
    steps = sorted(p["step"] for p in points)
    grids = mlflow.MlflowClient().list_artifacts(run.info.run_id, "images")
    assert len(grids) >= len(set(steps)) and all("samples" in g.path for g in grids)
    # the training run was not reopened: it ended before the evaluation began
    assert training.info.end_time < run.info.start_time
    assert "train/loss" in training.data.metrics and not any(
        key.startswith("eval") for key in training.data.metrics
    )


def test_inception_without_weights_fails_in_one_line(tmp_path, evaluated, tiny_data):
    root, _, _ = evaluated
    params = evaluate_params(
        tmp_path,
        feature_extractor="inception-v3-compat",
        inception_weights=str(tmp_path / "absent.pth"),
    )
    result = run_stage(
        "evaluate.py",
        [
            "--params",
            params,
            "--data",
            tiny_data,
            "--model",
            root / "models/vae",
            "--evaluator",
            root / "evaluator",
            "--out",
            tmp_path / "m.json",
            "--card",
            tmp_path / "c.json",
            "--cache",
            tmp_path / "cache",
            "--figures",
            tmp_path / "fig",
        ],
        tmp_path,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such file" in lines[0]  # checked before torch-fidelity
    assert "evaluate.inception_weights" in lines[0]
    assert not (tmp_path / "m.json").exists()


def test_unlabelled_data_cannot_train_the_evaluator(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(8):
        Image.new("L", (8, 8), i * 30).save(folder / f"{i}.png")
    data = DataParams(source="folder", folder=str(folder), image_size=8, test_fraction=0.25)
    download(data, tmp_path / "raw")
    preprocess(tmp_path / "raw", tmp_path / "prepared", data, seed=0)
    params = evaluate_params(tmp_path)
    result = run_stage(
        "train_evaluator.py",
        ["--params", params, "--data", tmp_path / "prepared", "--out", tmp_path / "ev"],
        tmp_path,
        check=False,
    )
    assert result.returncode == 1 and "inception-v3-compat" in result.stderr
    assert not (tmp_path / "ev").exists()


def test_unreachable_tracking_server_stops_evaluation_first(tmp_path, evaluated, tiny_data):
    from tests.integration.processes import free_port

    root, params, _ = evaluated
    closed = f"http://127.0.0.1:{free_port()}"
    cmd = [sys.executable, ROOT / "stages/evaluate.py", "--params", params, "--data", tiny_data,
           "--model", root / "models/vae", "--evaluator", root / "evaluator",
           "--out", tmp_path / "m.json", "--card", tmp_path / "c.json",
           "--cache", tmp_path / "c", "--figures", tmp_path / "fig"]  # fmt: skip
    result = run_command(cmd, tmp_path, tracking_uri=closed, check=False)
    assert result.returncode == 1 and "unreachable" in result.stderr
    assert not (tmp_path / "m.json").exists()


def test_figures_show_what_was_scored(evaluated):
    """The report's pictures: 64 evaluated samples; VAE test inputs above their reconstructions."""
    from PIL import Image

    root, _, _ = evaluated
    for name in ("vae", "real"):  # 64 8×8 tiles, 8 a row, 1 px padding: 73 px, upscaled
        width, height = Image.open(root / f"fig/{name}/samples.png").size
        assert width == height and width % 73 == 0 and width >= 384
    assert not (root / "fig/real/reconstructions.png").exists()
    assert not (root / "fig/real/nearest.png").exists()  # the floor: no memorisation
    assert (
        Image.open(root / "fig/vae/nearest.png").size
        == Image.open(root / "fig/vae/reconstructions.png").size
    )  # 16 samples nearest a training image, above it: the same 2×16 grid
    # 16 pairs of 8×8 tiles, 1 px padding: a 145×19 grid (2 rows of 16), upscaled by a whole factor
    width, height = Image.open(root / "fig/vae/reconstructions.png").size
    assert width % 145 == 0 and height * 145 == width * 19
