"""Seeds on demand (pipelines/decide.py): which pairs more seeds would decide, how many seeds
to add, and params.yaml edited in place with its comments kept."""

import pytest
import yaml

from genbench.compare.verdict import rank
from genbench.config.verdict import VerdictParams
from genbench.core.errors import ParamsError
from genbench.schema import validate_params
from pipelines.decide import more_seeds, set_keys, undecided, yaml_list
from tests.conftest import ROOT


def comparison(values: dict[str, list[float]]) -> dict:
    return {"verdicts": {"fid": rank(values, "lower", "log", 0.95, 0.1)}}


def test_seeds_are_added_only_for_pairs_that_a_few_more_seeds_would_decide():
    # gan and vae 10% apart with a 5% seed spread: not separated at 3 seeds, decidable at a few
    close = comparison({"gan": [10.0, 10.6, 9.5], "vae": [11.0, 11.8, 10.6], "ddpm": [90, 95, 99]})
    pair = close["verdicts"]["fid"]["pairs"]["gan_vs_vae"]
    assert not pair["separated"] and 3 < pair["seeds_needed"] <= 8
    assert undecided(close, 8) == {"fid: gan_vs_vae": pair["seeds_needed"]}
    added = more_seeds(close, [0, 1, 2], 8)
    assert added == list(range(3, pair["seeds_needed"]))  # new seeds above the largest
    # the same pair needing more than the cap: nothing added
    assert more_seeds(close, [0, 1, 2], pair["seeds_needed"] - 1) == []
    # everything separated: nothing to add
    far = comparison({"gan": [10.0, 10.1, 9.9], "vae": [20.0, 20.2, 19.9], "ddpm": [90, 95, 99]})
    assert undecided(far, 8) == {} and more_seeds(far, [0, 1, 2], 8) == []


def test_params_keys_are_written_in_place_keeping_comments(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    set_keys(params, "compare", {"seeds": yaml_list([0, 1, 2, 3])})
    set_keys(params, "verdict", {"initial_seeds": yaml_list([0, 1, 2]), "sequential_looks": "3"})
    text = params.read_text()
    loaded = yaml.safe_load(text)
    assert loaded["compare"]["seeds"] == [0, 1, 2, 3] and loaded["verdict"]["sequential_looks"] == 3
    assert loaded["verdict"]["initial_seeds"] == [0, 1, 2]
    assert "# set by `pipelines.run --until-decided`" in text  # the key's comment kept
    assert len(text.splitlines()) == len((ROOT / "params.yaml").read_text().splitlines())
    assert yaml.safe_load(text)["gan"] == yaml.safe_load((ROOT / "params.yaml").read_text())["gan"]
    with pytest.raises(ParamsError, match="compare.nothing is missing"):
        set_keys(params, "compare", {"nothing": "1"})


def test_initial_seeds_must_be_part_of_the_seeds(tmp_path):
    assert VerdictParams(initial_seeds=[0, 1, 2]).initial_problem([0, 1, 2, 3]) is None
    params = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    params.write_text(text.replace("  initial_seeds: null", "  initial_seeds: [0, 7]"))
    with pytest.raises(ParamsError, match="verdict.initial_seeds: 7 is not in compare.seeds"):
        validate_params(params)


def test_until_decided_refuses_bad_limits_before_running_anything(tmp_path, capsys):
    from pipelines.run import main

    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    before = params.read_bytes()
    code = main(["--repo", str(tmp_path), "--until-decided", "--max-seeds", "3"])
    assert code == 2 and params.read_bytes() == before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --max-looks 3") and "--max-seeds 3" in err[0]
