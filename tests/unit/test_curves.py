"""Quality against compute over seeds: aggregation, the verdict along the budget, the early
warning and the DVC plot tables, from planted curves; and their sentences in the report."""

import csv
import json

import pytest
from scipy import stats

from genbench.compare.curves import aggregate_curves, curve_section, curve_warnings
from genbench.compare.stats import paired_p
from genbench.config.verdict import VerdictParams
from genbench.core.errors import GenbenchError
from genbench.report.compute import leader_changes, percent, warnings
from tests.report_fixture import FLOPS_PER_STEP, curve_for, write_outputs
from tests.unit.test_report import load, render


def planted(levels: dict[str, tuple[float, ...]], noise: dict[str, float]) -> dict:
    """Per family three seeds' curves at fractions 0.25, 0.5, 1.0; seed s adds s × noise."""
    curves = {}
    for family, values in levels.items():
        curves[family] = []
        for seed in range(3):
            points = [
                {"fraction": f, "step": 25 * 2**i, "flops": 25 * 2**i * 10, "images_seen": 1}
                | {"fid": v + seed * noise[family] * (i + 1)}
                for i, (f, v) in enumerate(zip((0.25, 0.5, 1.0), values, strict=True))
            ]
            for point in points:
                point["kid_mean"] = point["fid"] / 10
            curves[family].append({"extractor": "evaluator", "samples": 100, "points": points})
    return curves


def test_paired_p_is_scipys_related_t_test():
    a, b = [20.1, 19.4, 21.0], [12.2, 12.0, 12.5]
    assert paired_p(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_p([1.0, 2.0], [0.0, 1.0]) == 0.0 and paired_p([1.0, 2.0], [1.0, 2.0]) == 1.0
    assert paired_p([1.0], [2.0]) is None


def test_the_verdict_along_the_budget_and_the_warning_follow_the_planted_values():
    curves = planted(
        {"gan": (40.0, 12.0, 20.0), "vae": (25.0, 23.0, 22.0), "ddpm": (60.0, 12.1, 5.0)},
        {"gan": 0.4, "vae": 0.3, "ddpm": 0.5},
    )
    section = curve_section(curves, 0.95, VerdictParams())
    assert section["samples"] == 100 and section["extractor"] == "evaluator"
    gan = section["families"]["gan"]
    assert [p["flops"] for p in gan] == [250, 500, 1000]
    assert gan[1]["fid"]["values"] == pytest.approx([12.0, 12.8, 13.6])
    # judged on KID alone: FID's bias at the curve's few samples differs between models
    assert list(section["verdicts"]) == ["kid_mean"] and section["verdict_metric"] == "kid_mean"
    kid = section["verdicts"]["kid_mean"]
    assert [v["fraction"] for v in kid] == [0.25, 0.5, 1.0]
    assert [v["best"] for v in kid] == ["vae", None, "ddpm"]
    assert kid[1]["letters"]["gan"] == kid[1]["letters"]["ddpm"] != kid[1]["letters"]["vae"]
    assert section["best"]["fid"] == {"gan": 0.5, "vae": 1.0, "ddpm": 1.0}
    # the GAN's last point is 8 worse than at 50% in every seed; the VAE keeps improving
    assert [w["metric"] for w in section["warnings"]] == ["fid", "kid_mean"]
    (warning, _) = section["warnings"]
    assert warning["family"] == "gan" and warning["better"]["fraction"] == 0.5
    assert warning["better"]["step"] == 50 and warning["p_holm"] < 0.05


def test_a_worse_last_point_within_the_noise_gives_no_warning():
    curves = planted({"gan": (10.0, 10.0, 10.5)}, {"gan": 0.0})
    for seed, shift in enumerate((-2.0, 2.5, -1.5)):  # last - middle: 0.5 ± 2: not significant
        curves["gan"][seed]["points"][2]["fid"] += shift
        curves["gan"][seed]["points"][2]["kid_mean"] += shift / 10
    assert curve_warnings(aggregate_curves(curves, 0.95), 0.95) == []


def test_seeds_trained_with_other_snapshots_are_refused():
    curves = planted({"gan": (1.0, 2.0, 3.0)}, {"gan": 0.1})
    curves["gan"][2]["points"].pop(0)
    with pytest.raises(GenbenchError, match="different compare.snapshots"):
        aggregate_curves(curves, 0.95)


def test_the_report_says_where_the_leader_changes_and_warns_of_the_collapse(tmp_path):
    write_outputs(tmp_path)
    inputs = load(tmp_path)
    (kid,) = leader_changes(inputs)  # FID is drawn, not judged, along the budget
    assert kid == (
        "KID along the budget (200 samples per point): at 25% vae ≻ gan ≻ ddpm; "
        "at 50% gan ≈ ddpm ≻ vae; at 100% ddpm ≻ gan ≻ vae"
    )
    (fid_warning, kid_warning) = warnings(inputs)
    assert fid_warning.startswith("gan: its final FID (")
    assert (
        "worse than at 50% of the budget" in fid_warning
        and "step-0000050.safetensors" in fid_warning
    )
    page, markdown = render(tmp_path)
    escaped = kid.replace("(", "\\(").replace(")", "\\)")
    assert escaped.replace("{", "\\{").replace("}", "\\}") in markdown
    assert page.index('id="compute-figure"') < page.index('id="seeds-figure"')
    assert "gan: its final FID" in page[page.index('id="warnings"') :]
    rows = list(csv.DictReader((tmp_path / "metrics/curves/gan.csv").open()))
    assert [int(r["flops"]) for r in rows] == [25 * FLOPS_PER_STEP, 50 * FLOPS_PER_STEP, 10**9]
    comparison = json.loads((tmp_path / "metrics/compare.json").read_text())
    means = [p["fid"]["mean"] for p in comparison["curve"]["families"]["gan"]]
    assert [float(r["fid"]) for r in rows] == pytest.approx(means)


def test_a_verdict_held_over_several_fractions_is_one_span(tmp_path):
    write_outputs(tmp_path)
    comparison = json.loads((tmp_path / "metrics/compare.json").read_text())
    kid = comparison["curve"]["verdicts"]["kid_mean"]
    kid.insert(0, {**kid[0], "fraction": 0.125})  # the same ranking at 12.5% and 25%
    kid.append({**kid[-1], "fraction": 2.0})  # and at 100% and 200%
    (tmp_path / "metrics/compare.json").write_text(json.dumps(comparison))
    (sentence,) = leader_changes(load(tmp_path))
    assert sentence.endswith(
        "from 12.5% to 25% vae ≻ gan ≻ ddpm; at 50% gan ≈ ddpm ≻ vae; from 100% on ddpm ≻ gan ≻ vae"
    )


def test_percent_and_no_curve_no_sentences(tmp_path):
    assert (percent(0.125), percent(0.5), percent(1.0)) == ("12.5%", "50%", "100%")
    assert curve_for("gan", 0)["points"][-1]["flops"] == 10**9
    write_outputs(tmp_path)
    comparison = json.loads((tmp_path / "metrics/compare.json").read_text())
    comparison["curve"] = None
    (tmp_path / "metrics/compare.json").write_text(json.dumps(comparison))
    inputs = load(tmp_path)
    assert leader_changes(inputs) == [] and warnings(inputs) == []
    page, _ = render(tmp_path)
    assert 'id="compute-figure"' not in page


def test_the_same_groups_under_another_leader_are_one_span(tmp_path):
    write_outputs(tmp_path)
    comparison = json.loads((tmp_path / "metrics/compare.json").read_text())
    kid = comparison["curve"]["verdicts"]["kid_mean"]
    for point, order in ((kid[0], ["vae", "gan", "ddpm"]), (kid[1], ["gan", "vae", "ddpm"])):
        point["letters"] = {"vae": "a", "gan": "a", "ddpm": "b"}
        point["ranking"] = "{" + ", ".join(order[:2]) + "} ≻ ddpm"
        for pair in point["pairs"].values():
            pair["equivalence"]["equivalent"] = False
    (tmp_path / "metrics/compare.json").write_text(json.dumps(comparison))
    (sentence,) = leader_changes(load(tmp_path))
    assert sentence.endswith("from 25% to 50% {gan, vae} ≻ ddpm; at 100% ddpm ≻ gan ≻ vae")


def test_the_warning_adjusts_for_every_earlier_snapshot_not_only_the_better_ones():
    """The last point is worse than the first (raw paired p < 0.05) but better than the other
    two: over all three comparisons Holm's adjustment leaves no significant difference."""
    last = [10.0, 10.5, 11.0]
    earlier = (
        [v - d for v, d in zip(last, (1.0, 1.3, 0.8), strict=True)],
        [v + d for v, d in zip(last, (0.5, -0.2, 0.9), strict=True)],
        [v + d for v, d in zip(last, (3.0, -1.0, 0.5), strict=True)],
    )
    assert paired_p(last, earlier[0]) < 0.05  # alone, it would warn
    curves = planted({"gan": (0.0, 0.0, 0.0)}, {"gan": 0.0})
    for seed in range(3):
        values = [*(e[seed] for e in earlier), last[seed]]
        curves["gan"][seed]["points"] = [
            {"fraction": f, "step": 1 + i, "flops": 1 + i, "images_seen": 1}
            | {"fid": v, "kid_mean": 0.0}
            for i, (f, v) in enumerate(zip((0.125, 0.25, 0.5, 1.0), values, strict=True))
        ]
    assert curve_warnings(aggregate_curves(curves, 0.95), 0.95) == []
