"""Malformed params are refused with one line naming the key; good params parse to typed models."""

import subprocess
import sys
from pathlib import Path

import pytest

from genbench.config.base import Seed, load_params
from genbench.config.data import DataParams
from genbench.core.errors import ParamsError
from genbench.schema import validate_params

GENBENCH = str(Path(sys.executable).parent / "genbench")  # the console script of this venv

# (change to the default params, the key the message must name, a word of what is allowed)
MALFORMED = [
    ({"seed": -1}, "seed", "greater than or equal"),
    ({"seed": "zero"}, "seed", "integer"),
    ({"seed": 1.5}, "seed", "integer"),
    ({"seed": 2**40}, "seed", "less than"),
    ({"data.source": "imagenet"}, "data.source", "digits"),
    ({"data.source": 3}, "data.source", "digits"),
    ({"data.image_size": 4}, "data.image_size", "greater than or equal to 8"),
    ({"data.image_size": 1024}, "data.image_size", "less than or equal to 256"),
    ({"data.image_size": "16"}, "data.image_size", "integer"),
    ({"data.image_size": 16.5}, "data.image_size", "integer"),
    ({"data.image_size": True}, "data.image_size", "integer"),
    ({"data.test_fraction": 0.0}, "data.test_fraction", "greater than 0"),
    ({"data.test_fraction": 1.0}, "data.test_fraction", "less than 1"),
    ({"data.test_fraction": "a fifth"}, "data.test_fraction", "number"),
    ({"data.max_bad_fraction": -0.1}, "data.max_bad_fraction", "greater than or equal to 0"),
    ({"data.max_bad_fraction": 2}, "data.max_bad_fraction", "less than or equal to 1"),
    ({"data.folder": 7}, "data.folder", "string"),
    ({"data.imagesize": 16}, "data.imagesize", "unknown key"),
    ({"data.source": "folder"}, "data.folder", "required when source is 'folder'"),
    ({"data": [1, 2]}, "data", "mapping"),
    ({"gan_typo": {"z_dim": 3}}, "gan_typo", "unknown top-level key"),
    ({"gan.z_dim": 0}, "gan.z_dim", "greater than or equal to 1"),
    ({"gan.widths": []}, "gan.widths", "at least 1"),
    ({"gan.widths": [64, -1]}, "gan.widths.1", "greater than or equal to 1"),
    ({"gan.lr_g": 0}, "gan.lr_g", "greater than 0"),
    ({"gan.steps": 0}, "gan.steps", "greater than or equal to 1"),
    ({"gan.device": "tpu"}, "gan.device", "pattern"),
    ({"gan.precision": "fp16"}, "gan.precision", "'fp32' or 'bf16'"),
    ({"gan.compile": "yes"}, "gan.compile", "boolean"),
    ({"gan.lr": 0.001}, "gan.lr", "unknown key"),
    (
        {"vae.reconstruction_loss": "l1"},
        "vae.reconstruction_loss",
        "'bce', 'mse' or 'optimal_sigma'",
    ),
    ({"vae.beta": -1.0}, "vae.beta", "greater than or equal to 0"),
    ({"vae.ema_decay": 1.0}, "vae.ema_decay", "less than 1"),
    ({"vae.batch_size": 0}, "vae.batch_size", "greater than or equal to 1"),
    ({"ddpm.attention_levels": [5]}, "ddpm.attention_levels = [5]", "levels [5] do not exist"),
    ({"ddpm.sample_steps": 2000}, "ddpm.sample_steps = 2000", "at most num_train_timesteps"),
    ({"evaluate.num_samples": 5}, "evaluate.isc_splits = 10", "at most 5"),
    ({"evaluate.prc_neighborhood": 1000}, "evaluate.prc_neighborhood", "at most 999"),
    ({"evaluate.ssim_pairs": 10**8}, "evaluate.ssim_pairs", "less than or equal to 10000"),
    ({"evaluate.kid_subsets": 10**6}, "evaluate.kid_subsets", "less than or equal to 10000"),
    ({"vae.beta": float("inf")}, "vae.beta = inf", "finite"),
    ({"vae.lr": float("nan")}, "vae.lr = nan", "finite"),
    ({"data.image_size": 12}, "data.image_size = 12", "gan needs 8, 16, 32 or 64"),
    ({"data.image_size": 8}, "gan.widths = [128, 64]", "needs 1"),
    ({"gan.widths": [8, 8, 8]}, "gan.widths", "image_size 16 needs 2"),
    ({"vae.widths": [8]}, "vae.widths", "image_size 16 needs 2"),
    ({"ddpm.block_widths": [8] * 6}, "ddpm.block_widths", "cannot be halved 5 times"),
    ({"gan": None}, "gan: null", "defaults"),
    ({"ddpm.beta_schedule": "cosine"}, "ddpm.beta_schedule", "squaredcos_cap_v2"),
    ({"ddpm.prediction_type": "x0"}, "ddpm.prediction_type", "v_prediction"),
    ({"ddpm.sampler": "euler"}, "ddpm.sampler", "ancestral"),
]


@pytest.mark.parametrize(("changes", "key", "allowed"), MALFORMED, ids=[c[1] for c in MALFORMED])
def test_malformed_params_name_the_key(write_params, changes, key, allowed):
    path = write_params(changes)
    with pytest.raises(ParamsError) as caught:
        validate_params(path)
    message = str(caught.value)
    assert key in message
    assert allowed in message
    assert "\n" not in message


def test_missing_seed_is_named(write_params, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("data:\n  source: digits\n")
    with pytest.raises(ParamsError, match="seed: required key is missing"):
        validate_params(path)


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("seed: 0\ndata:\n  source: [digits\n")
    with pytest.raises(ParamsError, match="line"):
        validate_params(path)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ParamsError, match="--params"):
        validate_params(tmp_path / "absent.yaml")


def test_defaults_parse_to_typed_models(repo_root):
    params = load_params(repo_root / "params.yaml", seed=Seed, data=DataParams)
    assert isinstance(params["data"], DataParams)
    assert params["data"].source == "digits"
    assert isinstance(params["seed"], int)


def test_missing_section_takes_defaults(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("seed: 3\n")
    params = load_params(path, seed=Seed, data=DataParams)
    assert params["data"] == DataParams()
    assert params["seed"] == 3


def test_params_are_frozen(repo_root):
    data = load_params(repo_root / "params.yaml", data=DataParams)["data"]
    with pytest.raises(Exception, match="frozen"):
        data.image_size = 32


def test_cli_exits_2_with_one_line_and_touches_nothing(write_params, tmp_path, repo_root):
    """A stage run with bad params exits 2 before writing: an existing output stays as it was."""
    path = write_params({"data.image_size": 3})
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "keep.txt").write_text("old output")
    result = subprocess.run(
        [
            sys.executable,
            str(repo_root / "stages/preprocess.py"),
            "--params",
            str(path),
            "--raw",
            str(tmp_path / "raw"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.image_size = 3" in lines[0]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "old output"


def test_genbench_validate_command(write_params):
    good = subprocess.run(
        [GENBENCH, "validate", "--params", str(write_params())], capture_output=True, text=True
    )
    assert good.returncode == 0, good.stderr
    bad_params = write_params({"data.source": "svhn"}, name="b.yaml")
    bad = subprocess.run(
        [GENBENCH, "validate", "--params", str(bad_params)], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "data.source = 'svhn'" in bad.stderr
