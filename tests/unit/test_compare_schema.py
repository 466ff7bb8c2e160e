"""compare.json has exactly the keys docs/compare_json.md lists, level by level."""

import json
import re

from genbench.core.records import Comparison
from tests.conftest import ROOT
from tests.report_fixture import write_outputs

DOC = (ROOT / "docs/compare_json.md").read_text()


def documented(section: str) -> set[str]:
    """The first-column keys of the table under `## <section>`."""
    text = DOC.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))


def test_compare_json_has_exactly_the_documented_keys(tmp_path):
    write_outputs(tmp_path)
    found = json.loads((tmp_path / "metrics/compare.json").read_text())
    assert set(found) == documented("Top level")
    verdict = found["verdicts"]["fid"]
    assert set(verdict) == documented("`verdicts.<metric>`")
    pair = next(iter(verdict["pairs"].values()))
    assert set(pair) == documented("`verdicts.<metric>.pairs.<a>_vs_<b>`")
    assert set(pair["effect"]) == {"kind", "estimate", "ci_low", "ci_high"}
    assert set(pair["equivalence"]) == {"margin", "bound", "p", "p_holm", "equivalent"}
    assert set(found["curve"]) == documented("`curve` (quality against compute)")
    (point, *_) = found["curve"]["verdicts"]["kid_mean"]
    assert set(point) == documented("`verdicts.<metric>`") - {"key", "label", "better", "test"} | {
        "fraction"
    }
    assert found["feature_spaces"] == ["evaluator", "random-cnn"]
    assert set(found["spaces"]["random-cnn"]) == {"verdicts"}
    assert set(found["spaces"]["random-cnn"]["verdicts"]["fid"]) == set(verdict)
    assert "is_mean" not in found["spaces"]["random-cnn"]["verdicts"]  # no IS in that space
    assert set(found["agreement"]["fid"]) == documented("`agreement.<metric>`")
    assert found["agreement"]["fid"]["status"] == "disagree"  # planted: opposite FID rankings
    assert found["sequential"] is None and set(found["diagnostics"]) == {"diversity"}
    assert set(found["families"]["gan"]["scores"]["fid"]) == {
        "n", "mean", "std", "ci_low", "ci_high", "half", "values"
    }  # fmt: skip
    assert found["names"] == ["gan", "vae", "ddpm"]  # the order given, for the report
    assert set(found["runs"]) == {f"{f}-{s}" for f in found["names"] for s in (0, 1, 2)}
    assert set(found["runs"]["gan-0"]) == documented("`runs.<name>`")
    assert set(found["real"]) == {"name", "metrics", "card"}
    step, loss, speed = found["runs"]["gan-0"]["losses"]  # losses.csv's columns, in its order
    assert (step["name"], loss["name"], speed["name"]) == ("step", "loss", "images_per_second")
    assert step["values"] == [10, 20, 30, 40, 50]
    assert found["dataset"]["counts"]["test"] == 5 and found["dataset"]["path"].endswith("prepared")
    Comparison.model_validate(found)  # the type the report parses it through


def test_sequential_keys_are_documented(tmp_path):
    from genbench.compare.run import sequential
    from genbench.config.verdict import VerdictParams

    found = sequential([0, 1, 2, 3], VerdictParams(initial_seeds=[0, 1, 2], sequential_looks=3))
    assert set(found) == documented("`sequential` (seeds on demand)")
    assert found["added_seeds"] == [3] and "3 planned looks" in found["correction"]
