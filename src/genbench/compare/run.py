"""The `compare` stage's work: read every (family, seed) evaluation, aggregate each metric over
the seeds, test the families against each other and write metrics/compare.json.

compare.json (a DVC metrics file; docs/compare_json.md documents every key):
    seeds, n, confidence, equivalence_margin, extractor, feature_spaces, test
    families.<family>.<group>.<metric>: {n, mean, std, ci_low, ci_high, half, values}
    verdicts.<metric>: the ranking (compare/verdict.py) with key, label, better, test
    spaces.<space>.verdicts.<metric>: the same in each further feature space
    agreement.<metric>: whether the spaces' verdicts agree (compare/agreement.py)
    diagnostics.<metric>: why a quality metric is shown but not ranked
    sequential: how seeds on demand added seeds (null: fixed upfront)
    curve: quality against compute (compare/curves.py; null when the models have no curve)
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench import tracking
from genbench.compare.agreement import agreements
from genbench.compare.curves import curve_section, write_curve_tables
from genbench.compare.stats import noise_constant, summary
from genbench.compare.verdict import rank
from genbench.config.compare import CompareParams
from genbench.config.verdict import VerdictParams
from genbench.core.errors import GenbenchError
from genbench.core.files import flatten, write_json
from genbench.core.layout import CARD_SUFFIX, CONFIG, CURVES, REAL, RUN, STATS, run_name
from genbench.core.metric_registry import (
    ASINH,
    METRICS,
    SCORES,
    VERDICT_METRICS,
    WELCH,
    scores_group,
)
from genbench.core.records import (
    Card,
    Comparison,
    ModelConfig,
    Record,
    TrackedRun,
    TrainStats,
    read_losses,
)
from genbench.core.store import read_meta


@dataclass(frozen=True)
class ComparePaths:
    """What the compare stage reads (dvc.yaml gives every path) and the file it writes."""

    runs: Path  # metrics/runs: each model's metrics file and protocol card
    real: Path  # metrics/real.json (its card beside it): the real-data floor
    models: Path  # models/: each model's config, training stats, MLflow run, losses
    data: Path  # data/prepared: its meta.json describes the dataset
    out: Path  # compare.json
    curves: Path | None = None  # one curve CSV per family (dvc plots)


def read_result(metrics_path: Path, model: Path | None, remake: str) -> dict[str, Any]:
    """One evaluated model's files (model None: the real-data floor), checked through their
    types (core/records.py) and carried as written: compare.json's `runs.<name>` / `real`."""
    name = REAL if model is None else model.name
    card_path = metrics_path.with_name(metrics_path.name.removesuffix(".json") + CARD_SUFFIX)
    try:
        metrics = json.loads(metrics_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise GenbenchError(
            f"{metrics_path} is missing or broken ({err}); run `{remake}`"
        ) from None
    found: dict[str, Any] = {"name": name, "metrics": metrics}
    found["card"] = _as_written(Card, card_path, remake)
    if model is not None:
        train = f"dvc repro train@{name}"
        found["config"] = _as_written(ModelConfig, model / CONFIG, train)
        found["stats"] = _as_written(TrainStats, model / STATS, train, optional=True)
        found["run"] = _as_written(TrackedRun, model / RUN, train, optional=True)
        found["losses"] = read_losses(model / CURVES)
    return {key: value for key, value in found.items() if value is not None}


def _as_written(kind: type[Record], path: Path, remake: str, optional: bool = False) -> Any:
    """A model folder's JSON file checked against its type, returned as the file holds it
    (None when an optional file is missing)."""
    if optional and not path.exists():
        return None
    kind.read(path, remake)
    return json.loads(path.read_text())


def read_run(found: dict[str, Any]) -> tuple[dict, str, dict | None]:
    """(flattened numeric metrics with the training's timings, feature spaces (the primary
    first, comma-joined), curve or None) of one evaluated model's result (read_result).
    The timings come from train_stats.json: kept out of evaluation's inputs, joined here."""
    metrics = dict(found["metrics"])
    curve = metrics.pop("curve", None)
    metrics.pop("protocol", None)  # the card's digest: not a metric to average
    numeric = {
        key: float(value)
        for key, value in flatten(metrics).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    if "stats" in found:
        stats = TrainStats.model_validate(found["stats"])
        numeric["cost.train_seconds"] = float(stats.wall_seconds)
        numeric["cost.train_images_per_second"] = float(stats.images_per_second)
    spaces = Card.model_validate(found["card"]).spaces
    return numeric, ",".join(spaces), curve


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} -> {"a": {"b": 1}}: the inverse of files.flatten."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def aggregate(values: dict[str, list[dict]], confidence: float) -> dict[str, dict]:
    """Per family, every metric that all its seeds have: summary plus the seed values."""
    out = {}
    for family, runs in values.items():
        keys = sorted(set.intersection(*(set(run) for run in runs)))
        seeds_of = {key: [run[key] for run in runs] for key in keys}
        out[family] = {
            key: {**summary(values, confidence), "values": values}
            for key, values in seeds_of.items()
        }
    return out


def kid_noise(families: dict[str, dict], space: str | None = None) -> float:
    """The asinh scale's constant for KID in a feature space (None: the primary): the median
    of every run's KID standard error over its subsets (`kid_std`); 1.0 when runs lack it."""
    key = f"{scores_group(space)}.kid_std"
    return noise_constant(
        [v for stats in families.values() if key in stats for v in stats[key]["values"]]
    )


def judge(
    families: dict[str, dict], space: str | None, confidence: float, wording: VerdictParams
) -> dict:
    """The ranking (compare/verdict.py) of every verdict metric that two or more families have
    in a feature space (None: the primary), with the metric's registry entry: compare.json's
    `verdicts` (and `spaces.<space>.verdicts`)."""
    verdicts = {}
    for metric in VERDICT_METRICS:
        key = metric.key_in(space)
        have = {f: stats[key]["values"] for f, stats in families.items() if key in stats}
        if len(have) < 2:
            continue  # one family alone is not "best" (e.g. reconstruction: the VAE only)
        constant = kid_noise(families, space) if metric.scale == ASINH else 1.0
        found = rank(
            have,
            metric.better,
            metric.scale,
            confidence,
            wording.equivalence_margin,
            constant,
            wording.sequential_looks,
        )
        verdicts[metric.metric] = {
            "key": key,
            "label": metric.label,
            "better": metric.better,
            "test": f"{WELCH} on {found['scale']} values, Holm-adjusted over all pairs",
            **found,
        }
    return verdicts


def sequential(seeds: list[int], wording: VerdictParams) -> dict | None:
    """How seeds on demand added seeds, for the report (None: the seeds were fixed upfront)."""
    if wording.initial_seeds is None and wording.sequential_looks == 1:
        return None
    initial = list(wording.initial_seeds or seeds)
    looks = wording.sequential_looks
    return {
        "initial_seeds": initial,
        "added_seeds": [s for s in seeds if s not in initial],
        "looks": looks,
        "correction": f"Bonferroni over {looks} planned looks: every test at "
        f"(1 - confidence) / {looks}",
    }


def run_compare(
    names: list[str], cfg: CompareParams, wording: VerdictParams, paths: ComparePaths
) -> dict:
    """Aggregate, judge and write compare.json and, in `paths.curves`, one CSV of the
    quality-against-compute curve per family; returns compare.json. Beside the statistics,
    compare.json carries every result as read (metrics, card, config, training stats, MLflow
    run, losses) and the dataset's description: everything the report shows."""
    seeds, confidence = cfg.seeds, cfg.confidence
    results = {
        run_name(f, s): read_result(
            paths.runs / f"{run_name(f, s)}.json",
            paths.models / run_name(f, s),
            f"dvc repro evaluate@{run_name(f, s)}",
        )
        for f in names
        for s in seeds
    }
    real = read_result(paths.real, None, "dvc repro evaluate_real")
    read = {f: [read_run(results[run_name(f, s)]) for s in seeds] for f in names}
    extractors = {extractor for runs_of in read.values() for _, extractor, _ in runs_of}
    if len(extractors) != 1:
        found = " / ".join(sorted(extractors))
        raise GenbenchError(
            f"the runs were scored in different feature spaces ({found}); rerun `dvc repro` "
            "so every model is evaluated with evaluate.feature_extractor and feature_spaces"
        )
    extractor, *others = extractors.pop().split(",")
    families = aggregate({f: [r[0] for r in runs_of] for f, runs_of in read.items()}, confidence)
    problem = wording.initial_problem(seeds)
    if problem:
        raise GenbenchError(problem)
    verdicts = judge(families, None, confidence, wording)
    spaces = {space: judge(families, space, confidence, wording) for space in others}
    per_seed = {f: [r[2] for r in runs_of] for f, runs_of in read.items()}
    curve = curve_section(per_seed, confidence, wording)
    if curve is not None and paths.curves is not None:
        write_curve_tables(curve["families"], paths.curves)
    result = {
        "names": list(names),
        "seeds": list(seeds),
        "n": len(seeds),
        "confidence": confidence,
        "equivalence_margin": wording.equivalence_margin,
        "extractor": extractor,
        "feature_spaces": [extractor, *others],
        "test": f"{WELCH} between every pair of families on each metric's scale, "
        "Holm-adjusted over the pairs; TOST for equivalence",
        "families": {f: nest(stats) for f, stats in families.items()},
        "verdicts": verdicts,
        "spaces": {space: {"verdicts": found} for space, found in spaces.items()},
        "agreement": agreements({extractor: verdicts, **spaces}),
        "diagnostics": {m.metric: m.why_not for m in METRICS if m.why_not},
        "sequential": sequential(list(seeds), wording),
        "curve": curve,
        "runs": results,
        "real": real,
        "dataset": {**read_meta(paths.data), "path": str(paths.data)},
    }
    Comparison.model_validate(result)  # what the report will read: checked before it is written
    write_json(paths.out, result)
    return result


def summary_of(result: dict, family: str) -> dict[str, float]:
    """One family's small metrics file: each verdict metric's mean over the seeds in the
    primary space, by its short name (`fid`, `kid`, `is`, ...); the intervals and tests are in
    compare.json and the report."""
    stats = result["families"][family].get(SCORES, {})
    return {
        metric.key: stats[metric.metric]["mean"]
        for metric in VERDICT_METRICS
        if metric.metric in stats and stats[metric.metric]["mean"] is not None
    }


def write_summaries(result: dict, folder: Path) -> None:
    """metrics/summary/<family>.json for every family (DVC's metrics files: one row each in
    `dvc metrics show`, a column per verdict metric)."""
    folder.mkdir(parents=True, exist_ok=True)
    for family in result["families"]:
        write_json(folder / f"{family}.json", summary_of(result, family))


def log_compare(result: dict, params_file: Path, out: Path, runs: Path) -> bool:
    """A run of its own in MLflow: a handful of metrics (each family's mean FID and KID in the
    primary space, `<family>.fid`), the table of every verdict metric's mean ± interval per
    family as an artifact (`families.md`) beside compare.json, and runs.json: the runs that
    made the metrics files in `runs` (found by their sha256; none is changed); False, saying
    why, when the store cannot take it (compare.json stands either way)."""
    shown = {}
    for family, stats in result["families"].items():
        for metric in ("fid", "kid_mean"):
            mean = stats.get(SCORES, {}).get(metric, {}).get("mean")
            if mean is not None:
                shown[f"{family}.{metric.split('_')[0]}"] = mean
    files = {
        run_name(f, s): runs / f"{run_name(f, s)}.json"
        for f in result["families"]
        for s in result["seeds"]
    }
    table = families_table(result)
    return tracking.log_comparison(params_file, shown, result["seeds"], out, files, table)


def families_table(result: dict) -> str:
    """compare.json's verdict metrics as a Markdown table: family × metric, mean ± half-width
    (primary space)."""
    header = [m.label for m in VERDICT_METRICS]
    lines = ["| family | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for family, stats in result["families"].items():
        cells = []
        for metric in VERDICT_METRICS:
            found = stats.get(SCORES, {}).get(metric.metric, {})
            mean, half = found.get("mean"), found.get("half")
            text = "" if mean is None else f"{mean:.{metric.digits}f}"
            cells.append(text + (f" ± {half:.{metric.digits}f}" if text and half else ""))
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
