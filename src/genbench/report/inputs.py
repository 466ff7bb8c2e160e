"""What a report is made of, read from the pipeline's outputs: each model's metrics, protocol
card, training config, MLflow run, loss curves and figures, plus the real-data floor.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.errors import GenbenchError
from genbench.layout import CONFIG, CURVES, RUN
from genbench.system import git

REAL = "real"  # the floor's name in metrics/ and figures/


@dataclass(frozen=True)
class Result:
    """One evaluated model (or the real-data floor, with no config, run or curves)."""

    name: str
    metrics: dict[str, Any]  # metrics/<name>.json: {extractor: {...}, "ssim": {...}, "cost": {...}}
    card: dict[str, Any]  # metrics/<name>.protocol.json
    config: dict[str, Any] | None = None  # models/<name>/config.json: family, params, data, seed
    run: dict[str, str] | None = None  # models/<name>/mlflow_run.json: run_id, tracking_uri
    curves: Path | None = None  # models/<name>/losses.csv
    figures: dict[str, Path] = field(default_factory=dict)  # file name (layout.py) -> PNG


@dataclass(frozen=True)
class Previous:
    """The committed metrics and protocol cards at a git revision, to show what changed."""

    commit: str  # the short sha the revision (e.g. HEAD) was when the report was rendered
    metrics: dict[str, dict]  # name -> metrics/<name>.json at that commit
    cards: dict[str, dict]  # name -> metrics/<name>.protocol.json at that commit


@dataclass(frozen=True)
class ReportInputs:
    models: list[Result]
    real: Result
    dataset: dict[str, Any]  # data/prepared/meta.json (+ "path")
    previous: Previous | None  # None: no git repository or no such revision
    previous_rev: str = "HEAD"

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
    """Read one model's outputs (model_dir None: the real-data floor)."""
    stage = f"dvc repro {'evaluate_real' if model_dir is None else f'evaluate@{name}'}"
    metrics = read_json(metrics_dir / f"{name}.json", stage)
    card = read_json(metrics_dir / f"{name}.protocol.json", stage)
    figures = {path.name: path for path in sorted((figures_dir / name).glob("*.png"))}
    if model_dir is None:
        return Result(name, metrics, card, figures=figures)
    train = f"dvc repro train@{name}"
    curves = model_dir / CURVES
    return Result(
        name,
        metrics,
        card,
        config=read_json(model_dir / CONFIG, train),
        run=read_json(model_dir / RUN, train),
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
    models = [load_result(n, metrics_dir, figures_dir, models_dir / n) for n in names]
    real = load_result(REAL, metrics_dir, figures_dir, None)
    dataset = {**read_json(data_dir / "meta.json", "dvc repro preprocess"), "path": str(data_dir)}
    extractor_of([*models, real])  # fail now, before rendering, when extractors differ
    return ReportInputs(models, real, dataset, previous, previous_rev)


def committed_at(rev: str, names: list[str], metrics_dir: Path) -> Previous | None:
    """Each model's metrics and card as committed at `rev`: what `dvc metrics diff <rev>`
    compares with (the metrics are git-tracked). None outside git or when `rev` does not exist.
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
    files = {"metrics": "{}.json", "cards": "{}.protocol.json"}
    committed: dict[str, dict[str, dict]] = {kind: {} for kind in files}
    for kind, pattern in files.items():
        for name in names:
            shown = git("show", f"{rev}:./{pattern.format(name)}", cwd=where)
            try:
                if shown.returncode == 0:
                    committed[kind][name] = json.loads(shown.stdout)
            except json.JSONDecodeError:
                continue  # a broken file then: its metrics show as new
    return Previous(found.stdout.strip(), committed["metrics"], committed["cards"])
