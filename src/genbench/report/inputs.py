"""What a report is made of: metrics/compare.json (the comparison over seeds, and every result
the compare stage read: metrics, protocol card, config, training stats, MLflow run, losses) and
the evaluation figures. The report reopens no other file.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.core.errors import GenbenchError
from genbench.core.layout import REAL, run_name
from genbench.core.records import Comparison, Result


@dataclass(frozen=True)
class Shown:
    """One result as the report shows it: compare.json's entry as written (`raw`: exact
    numbers, NaN included), the same through its type, and its figures (file name in
    layout.py -> PNG)."""

    raw: dict[str, Any]
    result: Result
    figures: dict[str, Path]

    @property
    def name(self) -> str:
        return self.result.name

    @property
    def metrics(self) -> dict[str, Any]:
        return self.raw["metrics"]

    @property
    def card(self) -> dict[str, Any]:
        return self.raw["card"]


@dataclass(frozen=True)
class ReportInputs:
    comparison: dict[str, Any]  # metrics/compare.json as written
    record: Comparison  # the same, through its type
    models: list[Shown]  # every family's runs, seed by seed
    real: Shown

    @property
    def families(self) -> list[str]:
        return list(self.record.names)

    @property
    def seeds(self) -> list[int]:
        return list(self.record.seeds)

    @property
    def dataset(self) -> dict[str, Any]:
        return self.record.dataset

    @property
    def extractor(self) -> str:
        """The feature extractor all FIDs came from (compare checked it is one)."""
        return self.record.extractor

    def runs_of(self, family: str) -> list[Shown]:
        """A family's runs in seed order."""
        return [r for r in self.models if r.result.family == family]


def load_inputs(compare: Path, figures_dir: Path) -> ReportInputs:
    """Everything the report shows, read and checked before anything is rendered."""
    record = Comparison.read(compare, "dvc repro compare")
    comparison = json.loads(Path(compare).read_text())
    missing = [name for name in record.runs if not (figures_dir / name).is_dir()]
    if missing:
        raise GenbenchError(
            f"{figures_dir / missing[0]} is missing; run `dvc repro evaluate@{missing[0]}`"
        )

    def shown(result: Result, raw: dict[str, Any]) -> Shown:
        found = sorted((figures_dir / result.name).glob("*.png"))
        return Shown(raw, result, {path.name: path for path in found})

    order = [run_name(family, seed) for family in record.names for seed in record.seeds]
    missing = [name for name in order if name not in record.runs]
    if missing:
        raise GenbenchError(f"{compare}: runs has no {missing[0]}; run `dvc repro compare`")
    models = [shown(record.runs[name], comparison["runs"][name]) for name in order]
    real = shown(record.real, comparison["real"])
    if real.name != REAL:
        raise GenbenchError(f"{compare}: real.name is {real.name!r}; run `dvc repro compare`")
    return ReportInputs(comparison, record, models, real)
