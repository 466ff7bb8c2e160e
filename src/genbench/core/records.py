"""The records stages hand each other, as types: what a reader may rely on in a trained model's
folder (config.json, train_stats.json, mlflow_run.json, losses.csv), in an evaluation's protocol
card, and in compare.json, the one file the report reads.

Readers parse a file through its type (`ModelConfig.read(path)`), not through dict paths: a
missing or mistyped field is one line naming the file and the field, and how to remake it.
Writers keep their own dicts (the bytes of the files, and so DVC's hashes, stay as they are);
each type allows extra fields, so a file written by a later version still reads.
"""

import csv
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from genbench.core.errors import GenbenchError


class Record(BaseModel):
    """A JSON file one stage writes and another reads."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @classmethod
    def read(cls, path: str | Path, remake: str) -> Self:
        """The file at `path` as this type, or one line saying what is wrong and `remake`."""
        try:
            return cls.model_validate_json(Path(path).read_bytes())
        except FileNotFoundError:
            raise GenbenchError(f"{path} is missing; run `{remake}`") from None
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the file"
            raise GenbenchError(
                f"{path}: {where}: {first['msg']}; run `{remake}` to write it again"
            ) from None


class Budget(Record):
    """What a training got (config.json's `budget`): the steps the FLOPs budget buys."""

    budget: dict[str, Any]  # the compare.budget params: unit, amount, tolerance
    steps: int
    flops_per_step: int
    train_flops: int
    images_seen: int


class ModelConfig(Record):
    """models/<name>/config.json: which family, params, data and seed made the weights."""

    family: str
    seed: int
    params: dict[str, Any]
    data: dict[str, Any]
    budget: Budget
    parameter_count: dict[str, int] = {}
    sha256: dict[str, str] = {}  # weights and snapshot files -> digest


class TrainStats(Record):
    """models/<name>/train_stats.json: what the training did and cost (timings included)."""

    steps: int
    wall_seconds: float
    images_per_second: float
    snapshot_seconds: dict[str, float] = {}  # step -> wall seconds when it was kept


class TrackedRun(Record):
    """models/<name>/mlflow_run.json: the training's MLflow run (and its logged model)."""

    run_id: str
    experiment_id: str = ""
    tracking_uri: str = ""
    model_id: str | None = None


def _cell(text: str | None) -> float | int | None:
    if text in ("", None):
        return None
    return int(text) if text.isdigit() else float(text)


class LossColumn(Record):
    """One column of a model's losses.csv (`step`, a loss, `images_per_second`)."""

    name: str
    values: list[float | int | None]  # an empty cell: None


def read_losses(path: Path) -> list[dict[str, Any]]:
    """models/<name>/losses.csv as LossColumn records in the file's column order (a list: JSON
    files are written with sorted keys, and the report draws the losses in the order logged);
    [] when there is none."""
    if not path.exists():
        return []
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    names = list(rows[0]) if rows else []
    return [{"name": name, "values": [_cell(row[name]) for row in rows]} for name in names]


class Card(Record):
    """metrics/…/<name>.protocol.json: every choice behind one evaluation (evaluation/card.py).
    Only the parts other stages read are typed."""

    num_samples: int | None = None
    feature_extractor: dict[str, Any]
    feature_spaces: list[dict[str, Any]] = []
    reference: dict[str, Any] = {}
    sampler: dict[str, Any] | None = None

    @property
    def spaces(self) -> list[str]:
        """The feature spaces it was scored in, the primary extractor first."""
        return [self.feature_extractor["name"], *(s["name"] for s in self.feature_spaces)]


class Result(Record):
    """One evaluated model (or the real-data floor, with no training parts), as compare.json's
    `runs.<name>` and `real` carry it for the report."""

    name: str
    metrics: dict[str, Any]  # its metrics file, as evaluation wrote it
    card: Card
    config: ModelConfig | None = None
    stats: TrainStats | None = None
    run: TrackedRun | None = None
    losses: list[LossColumn] = []

    @property
    def family(self) -> str | None:
        return self.config.family if self.config else None


class Comparison(Record):
    """metrics/compare.json (docs/compare_json.md): the statistics over seeds, and every
    result and the dataset's description the report shows beside them."""

    names: list[str]  # the families, in the order the report shows them
    seeds: list[int]
    n: int
    confidence: float
    equivalence_margin: float
    extractor: str
    feature_spaces: list[str]
    test: str
    families: dict[str, dict[str, Any]]
    verdicts: dict[str, dict[str, Any]]
    spaces: dict[str, dict[str, Any]] = {}
    agreement: dict[str, dict[str, Any]] = {}
    diagnostics: dict[str, str] = {}
    sequential: dict[str, Any] | None = None
    curve: dict[str, Any] | None = None
    runs: dict[str, Result]
    real: Result
    dataset: dict[str, Any]
