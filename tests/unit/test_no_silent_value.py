"""Issue 32, class 1 and 4 at the params file: a value genbench and DVC would read differently is
refused (one parser decides nothing alone), hostile YAML ends in one line, and the checks that
needed a stage's failure to find (splits, the reference split's size, a damaged tracking store,
an untrustworthy evaluator, a stale or damaged feature cache) now stop first, naming the key."""

import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from genbench.config.base import read_yaml
from genbench.core.errors import GenbenchError, ParamsError
from genbench.core.system import store_problem
from genbench.evaluation.evaluator_dir import accuracy_problem, read_evaluator
from genbench.evaluation.features import FeatureSets, extraction_code_key
from genbench.families.ddpm.networks import build_unet, norm_groups
from genbench.metrics.fidelity import Features
from genbench.schema import validate_params
from tests.conftest import ROOT

GENBENCH = str(Path(sys.executable).parent / "genbench")
DEFAULT = (ROOT / "params.yaml").read_text()

# (id, text replaced in the repository's params.yaml, its replacement, what the line must say)
TEXT_CASES = [
    ("octal_seed", "seed: 0 ", "seed: 010 ", "seed: YAML 1.1 (genbench) reads 8 but DVC"),
    ("octal_seeds", "seeds: [0, 1, 2]", "seeds: [00, 01, 010]", "compare.seeds[2]"),
    ("yes_is_true", "compile: false", "compile: no", "gan.compile"),
    ("float_without_dot", "amount: 3.0e+12", "amount: 3e12", "compare.budget.amount"),
    ("sexagesimal", "log_every: 25", "log_every: 1:25", "gan.log_every"),
    ("anchor", "gan:\n", "gan: &engine\n", "anchors and aliases"),
]


@pytest.mark.parametrize(
    ("old", "new", "says"), [c[1:] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES]
)
def test_values_the_two_parsers_read_differently_are_refused(tmp_path, old, new, says):
    assert old in DEFAULT
    path = tmp_path / "params.yaml"
    path.write_text(DEFAULT.replace(old, new, 1))
    with pytest.raises(ParamsError) as err:
        validate_params(path)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_repository_params_read_alike_in_both_parsers():
    from ruamel.yaml import YAML

    assert read_yaml(ROOT / "params.yaml") == YAML(typ="safe", pure=True).load(DEFAULT)


def alias_bomb() -> str:
    lines = ["seed: 0", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (alias_bomb(), "anchors and aliases"),  # 10^12 leaves if expanded
        ("seed: 0\na: &x [1, *x]\n", "anchors and aliases"),  # recursive
        ("seed: 0\na: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than 16"),
        (
            "seed: 0\n"
            + "".join("  " * i + f"k{i}:\n" for i in range(100))
            + "  " * 100
            + "v: 1\n",
            "nested deeper",
        ),
        ("seed: 0\n1: a\nb: c\nnull: d\n", "unknown top-level key"),  # keys of mixed types
    ],
    ids=["alias_bomb", "recursive_alias", "deep_flow", "deep_block", "mixed_keys"],
)
def test_hostile_yaml_is_one_line_at_once(tmp_path, text, says):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    result = subprocess.run(
        [GENBENCH, "validate", "--params", str(path)], capture_output=True, text=True, timeout=60
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert says in lines[0], lines[0]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (
            {"data": {"test_fraction": 0.001}},
            "data.test_fraction = 0.001: splits 1797 images into 2",
        ),
        ({"data": {"test_fraction": 0.999}}, "data.test_fraction = 0.999"),
        ({"data": {"val_fraction": 0.9999}}, "data.val_fraction"),
        ({"evaluate": {"prc_neighborhood": 500}}, "the digits test split would hold 360 images"),
        (
            {"evaluate": {"num_samples": 2, "isc_splits": 1, "prc_neighborhood": 1}},
            "evaluate.num_samples",
        ),
        ({"compare": {"budget": {"unit": "images", "amount": 1e15}}}, "more than 1e+12 images"),
    ],
    ids=["test_tiny", "test_all", "val_all", "prc_over_test_split", "num_samples_2", "images_1e15"],
)
def test_values_a_stage_failed_on_are_refused_by_validate(tmp_path, changes, says):
    params = yaml.safe_load(DEFAULT)
    for section, values in changes.items():
        params[section] = {**params[section], **values}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [GENBENCH, "validate", "--params", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and says in lines[0], result.stderr


def test_ddpm_widths_that_32_groups_do_not_divide_build():
    """[48, 96, 96] failed in GroupNorm (min(32, gcd) = 32 groups of 48 channels)."""
    assert norm_groups([32, 64, 64]) == 32  # the default network is unchanged
    assert norm_groups([48, 96, 96]) == 24 and norm_groups([12, 18]) == 6
    unet = build_unet(16, 1, [48, 96, 96], 1, [2], 0.0)
    assert unet(torch.zeros(2, 1, 16, 16), torch.tensor([1, 2])).sample.shape == (2, 1, 16, 16)


def test_a_damaged_tracking_store_is_refused(tmp_path):
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5000)])
    assert store_problem(f"sqlite:///{db}") is None
    data = bytearray(db.read_bytes())
    data[:16] = b"not sqlite at al"
    db.write_bytes(bytes(data))
    assert "not a sound sqlite database" in store_problem(f"sqlite:///{db}")


def test_an_evaluator_below_the_threshold_is_refused(tmp_path):
    info = {"trained": True, "test_accuracy": 0.103}
    assert "0.103 is below evaluate.evaluator.min_accuracy = 0.9" in accuracy_problem(info, 0.9)
    assert accuracy_problem({**info, "test_accuracy": 0.95}, 0.9) is None
    (tmp_path / "evaluator.json").write_text('{"trained": true, "test_accuracy": 0.103}')
    with pytest.raises(GenbenchError, match="min_accuracy"):
        read_evaluator(tmp_path, 0.9)


class _Stub:
    """The extractor fields FeatureSets reads (a real one needs a trained evaluator)."""

    weights_sha256 = "0" * 64


def test_the_feature_cache_is_keyed_on_the_code_and_a_damaged_entry_is_set_aside(
    tmp_path, monkeypatch
):
    data = tmp_path / "prepared"
    data.mkdir()
    made = Features(torch.ones(3, 4), torch.zeros(3, 2))
    sets = FeatureSets(_Stub(), None, data, tmp_path / "cache", False, 8)
    monkeypatch.setattr(FeatureSets, "of_images", lambda self, images: made)
    monkeypatch.setattr("genbench.evaluation.features.load_split", lambda d, s: (None, None))
    monkeypatch.setattr(
        "genbench.evaluation.features.read_meta",
        lambda d: {"sha256": {"test_images.npy": "a" * 64}},
    )
    sets.of_split("test")
    (entry,) = (tmp_path / "cache").iterdir()
    assert entry.name.endswith(f"-{extraction_code_key()}.npz")
    entry.write_bytes(entry.read_bytes()[:40])  # truncated: BadZipFile when read
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = FeatureSets(_Stub(), None, data, tmp_path / "cache", False, 8).of_split("test")
    assert torch.equal(again.features, made.features)
    assert any("moved to" in str(w.message) for w in caught)
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert names == [entry.name, f"{entry.name}.corrupt-1"]
    assert np.load(entry)["features"].shape == (3, 4)  # rewritten whole
