"""What a report is made of, read from the pipeline's outputs: the comparison over seeds
(metrics/compare.json), each trained model's (family and seed) metrics, protocol card, training
config, MLflow run, loss curves and figures, plus the real-data floor.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.core.errors import GenbenchError
from genbench.core.layout import CONFIG, CURVES, RUN, STATS, run_name
from genbench.core.system import git

REAL = "real"  # the floor's name in metrics/ and figures/
RUNS = "runs"  # metrics/runs/<family>-<seed>.json: one file per trained model
COMPARE = "compare.json"  # metrics/compare.json: the compare stage's aggregates and verdicts


@dataclass(frozen=True)
class Result:
    """One evaluated model, `<family>-<seed>` (or the real-data floor, with no config, run or
    curves)."""

    name: str
    metrics: dict[str, Any]  # metrics/<name>.json: {extractor: {...}, "ssim": {...}, "cost": {...}}
    card: dict[str, Any]  # metrics/<name>.protocol.json
    config: dict[str, Any] | None = None  # models/<name>/config.json: family, params, data, seed
    run: dict[str, str] | None = None  # models/<name>/mlflow_run.json: run_id, tracking_uri
    stats: dict[str, Any] | None = None  # models/<name>/train_stats.json: cost, snapshot times
    curves: Path | None = None  # models/<name>/losses.csv
    figures: dict[str, Path] = field(default_factory=dict)  # file name (layout.py) -> PNG


@dataclass(frozen=True)
class Previous:
    """What changed since a git revision: DVC's `metrics diff` of every result's metrics file,
    and the protocol cards committed there (they are cached outs, not metrics)."""

    commit: str  # the short sha the revision (e.g. HEAD) was when the report was rendered
    diff: dict[str, dict[str, dict]]  # name -> flattened key -> {"old", "new"(, "diff")}
    cards: dict[str, dict]  # name -> metrics/<name>.protocol.json at that commit


# `dvc metrics diff <rev>` over these files, unchanged keys included, keyed by the files given:
# file -> flattened key -> {"old", "new"(, "diff")}; None when there is no such revision or no
# DVC repository. The report stage passes DVC's own (the package never imports DVC).
MetricsDiff = Callable[[str, list[Path]], dict[Path, dict[str, dict]] | None]


@dataclass(frozen=True)
class ReportInputs:
    families: list[str]
    comparison: dict[str, Any]  # metrics/compare.json
    models: list[Result]  # every family's runs, seed by seed
    real: Result
    dataset: dict[str, Any]  # data/prepared/meta.json (+ "path")
    previous: Previous | None  # None: no git repository or no such revision
    previous_rev: str = "HEAD"
    execution: str = ""  # the pipeline execution's id (its MLflow runs' genbench.pipeline_id)

    @property
    def seeds(self) -> list[int]:
        return list(self.comparison["seeds"])

    def runs_of(self, family: str) -> list[Result]:
        """A family's runs in seed order."""
        return [r for r in self.models if (r.config or {}).get("family") == family]

    @property
    def extractor(self) -> str:
        """The feature extractor all FIDs came from (checked to be one)."""
        return extractor_of([*self.models, self.real])


def read_json(path: Path, how_to_make: str) -> dict[str, Any]:
    """A JSON file, or one line saying which file is missing or broken and how to make it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GenbenchError(f"{path} is missing; run `{how_to_make}`") from None
    except json.JSONDecodeError as err:
        raise GenbenchError(f"{path} is not valid JSON ({err}); run `{how_to_make}`") from None


def load_result(name: str, metrics_dir: Path, figures_dir: Path, model_dir: Path | None) -> Result:
    """Read one model's outputs (model_dir None: the real-data floor, in metrics_dir itself;
    a model's metrics are in metrics_dir/runs)."""
    stage = f"dvc repro {'evaluate_real' if model_dir is None else f'evaluate@{name}'}"
    where = metrics_dir if model_dir is None else metrics_dir / RUNS
    metrics = read_json(where / f"{name}.json", stage)
    card = read_json(where / f"{name}.protocol.json", stage)
    figures = {path.name: path for path in sorted((figures_dir / name).glob("*.png"))}
    if model_dir is None:
        return Result(name, metrics, card, figures=figures)
    train = f"dvc repro train@{name}"
    curves, stats = model_dir / CURVES, model_dir / STATS
    return Result(
        name,
        metrics,
        card,
        config=read_json(model_dir / CONFIG, train),
        run=read_json(model_dir / RUN, train),
        stats=read_json(stats, train) if stats.exists() else None,
        curves=curves if curves.exists() else None,
        figures=figures,
    )


def extractor_of(results: list[Result]) -> str:
    """The one feature extractor behind every result; two extractors are never compared."""
    names = {r.name: r.card.get("feature_extractor", {}).get("name") for r in results}
    if len(set(names.values())) != 1:
        found = ", ".join(f"{name}: {extractor}" for name, extractor in names.items())
        raise GenbenchError(
            f"the metrics come from different feature extractors ({found}); "
            "rerun `dvc repro` so every model is evaluated with evaluate.feature_extractor"
        )
    return next(iter(names.values()))


def load_inputs(
    names: list[str],
    metrics_dir: Path,
    models_dir: Path,
    figures_dir: Path,
    data_dir: Path,
    previous: Previous | None,
    previous_rev: str = "HEAD",
) -> ReportInputs:
    """Everything the report shows, read and checked before anything is rendered."""
    comparison = read_json(metrics_dir / COMPARE, "dvc repro compare")
    missing = [n for n in names if n not in comparison.get("families", {})]
    if missing:
        raise GenbenchError(f"{metrics_dir / COMPARE} has no {missing[0]}; run `dvc repro compare`")
    runs = [run_name(n, seed) for n in names for seed in comparison["seeds"]]
    models = [load_result(r, metrics_dir, figures_dir, models_dir / r) for r in runs]
    real = load_result(REAL, metrics_dir, figures_dir, None)
    dataset = {**read_json(data_dir / "meta.json", "dvc repro preprocess"), "path": str(data_dir)}
    extractor_of([*models, real])  # fail now, before rendering, when extractors differ
    return ReportInputs(list(names), comparison, models, real, dataset, previous, previous_rev)


def metrics_file(name: str) -> str:
    """Where a result's metrics live under metrics/: runs/<family>-<seed>.json or real.json."""
    return f"{name}.json" if name == REAL else f"{RUNS}/{name}.json"


def card_file(name: str) -> str:
    """Where a result's protocol card lives under metrics/, beside its metrics."""
    return metrics_file(name).removesuffix(".json") + ".protocol.json"


def since(
    rev: str, names: list[str], metrics_dir: Path, metrics_diff: MetricsDiff
) -> Previous | None:
    """Each result's change since `rev` as `dvc metrics diff <rev>` gives it (the metrics are
    git-tracked), with the cards committed there. None outside git or when `rev` does not exist.
    """
    where = Path(metrics_dir)
    if not where.is_dir():
        return None
    try:
        found = git(
            "rev-parse", "--verify", "--quiet", "--short", f"{rev}^{{commit}}", cwd=metrics_dir
        )
    except FileNotFoundError:  # no git on this machine
        return None
    if found.returncode != 0:
        return None
    files = {name: where / metrics_file(name) for name in names}
    diff = metrics_diff(rev, list(files.values()))
    if diff is None:
        return None
    cards: dict[str, dict] = {}
    for name in names:
        shown = git("show", f"{rev}:./{card_file(name)}", cwd=where)
        try:
            if shown.returncode == 0:
                cards[name] = json.loads(shown.stdout)
        except json.JSONDecodeError:
            continue  # a broken card then: judged as a missing one
    return Previous(found.stdout.strip(), {n: diff.get(f, {}) for n, f in files.items()}, cards)
