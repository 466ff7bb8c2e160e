"""The ablation's verdicts and table (compare/ablation.py, pipelines/ablation.py), on made-up
per-seed validation values: an option is a winner only when the compare stage's statistics
separate it from the baseline, better."""

import pytest

from genbench.compare.ablation import (
    BASELINE,
    BETTER,
    NOT_SEPARATED,
    WORSE,
    judge_family,
)
from genbench.core.errors import ParamsError
from pipelines.ablation import END, START, option_points, table, write_docs


def compare_of(family: str, fid: list[float], kid: list[float], runs: int = 3) -> dict:
    def stats(values):
        mean = sum(values) / len(values)
        return {"mean": mean, "half": 0.1, "values": values}

    cost = {"train_steps": {"mean": 979.0}, "train_seconds": {"mean": 40.0}}
    val = {"fid": stats(fid), "kid_mean": stats(kid), "kid_std": stats([0.2] * len(kid))}
    seeds = {f"{family}-{i}": {"run": {"run_id": f"run{i}abcdefgh"}} for i in range(runs)}
    return {"families": {family: {"val": val, "cost": cost}}, "runs": seeds}


BASE = compare_of("gan", [20.0, 21.0, 22.0], [1.0, 1.1, 1.2])
OPTIONS = {
    "sharper": compare_of("gan", [10.0, 10.4, 10.8], [0.40, 0.45, 0.50]),
    "same": compare_of("gan", [19.0, 21.5, 23.0], [0.9, 1.1, 1.3]),
    "broken": compare_of("gan", [60.0, 62.0, 64.0], [5.0, 5.5, 6.0]),
    "fid_only": compare_of("gan", [10.0, 10.4, 10.8], [9.0, 9.5, 10.0]),
}


def test_options_are_judged_against_the_baseline_with_the_compare_statistics():
    found = judge_family(BASE, OPTIONS, "gan", 0.95, 0.1)
    options = found["options"]
    assert options["sharper"]["fid"]["relation"] == BETTER and options["sharper"]["winner"]
    assert options["same"]["fid"]["relation"] == NOT_SEPARATED and not options["same"]["winner"]
    assert options["broken"]["fid"]["relation"] == WORSE and not options["broken"]["winner"]
    # better on FID but worse on KID: not a winner
    assert options["fid_only"]["kid"]["relation"] == WORSE and not options["fid_only"]["winner"]
    ranking = found["rankings"]["fid"]
    assert set(ranking["order"]) == {BASELINE, *OPTIONS} and ranking["n"] == 3
    # Holm over every pair of the family's runs (5 runs: 10 pairs)
    assert len(ranking["pairs"]) == 10
    p = options["sharper"]["fid"]["p_holm"]
    assert p is not None and 0 < p < 0.05


def test_a_family_without_val_scores_is_refused():
    with pytest.raises(ValueError, match="no validation scores for 'vae'"):
        judge_family(BASE, OPTIONS, "vae", 0.95, 0.1)


def test_the_table_names_every_run_and_the_docs_keep_their_prose(tmp_path):
    found = {"gan": judge_family(BASE, OPTIONS, "gan", 0.95, 0.1)}
    runs = {"gan": {BASELINE: BASE, **OPTIONS}}
    text = table(found, runs, {"gan/sharper": "ablation-abc-sharper"})
    lines = text.splitlines()
    assert len(lines) == 2 + 1 + len(OPTIONS)
    sharper = next(line for line in lines if "| sharper |" in line)
    assert "better (p" in sharper and "| yes |" in sharper and "ablation-abc-sharper" in sharper
    assert "run0abcd, run1abcd, run2abcd" in sharper
    assert "(baseline)" in next(line for line in lines if f"| {BASELINE} |" in line)
    docs = tmp_path / "ablations.md"
    docs.write_text(f"# Ablations\n\nprose\n\n{START}\nold table\n{END}\n\nmore prose\n")
    write_docs(docs, text)
    written = docs.read_text()
    assert "old table" not in written and text in written
    assert written.startswith("# Ablations\n\nprose") and written.endswith("more prose\n")


def test_options_are_checked_before_anything_runs():
    options = {"hinge": ["gan.loss=hinge"], "two": ["gan.loss=hinge", "vae.beta=2"]}
    assert option_points(options, ["hinge"]) == {
        "hinge": ("gan", (("gan.loss", "hinge", "hinge"),))
    }
    with pytest.raises(ParamsError, match="no option 'nope'"):
        option_points(options, ["nope"])
    with pytest.raises(ParamsError, match="one family's section"):
        option_points(options, ["two"])
    with pytest.raises(ParamsError, match="not a sweep"):
        option_points({"sweep": ["gan.z_dim=32,64"]}, None)
    with pytest.raises(ParamsError, match="empty"):
        option_points({}, None)


def test_an_equivalent_option_shows_the_equivalence_tests_p():
    from pipelines.ablation import _verdict

    item = {"relation": "equivalent", "p_holm": 0.9, "p_equivalence": 0.012}
    assert _verdict({"fid": item}, "fid") == "equivalent (TOST p 0.012)"
    assert _verdict({"fid": {**item, "relation": "better"}}, "fid") == "better (p 0.9)"
    assert _verdict(None, "fid") == "(baseline)"
