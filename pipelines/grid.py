"""Sweep grids in the syntax of `dvc exp run -S` (Hydra's override grammar), checked up front.

`gan.z_dim=32,64` is one axis with two choices; a grid is the cartesian product of its axes,
and each point becomes one `dvc exp run -S ...` (flows.py). Every point's params are validated
before the first experiment starts, so a typo fails in one line, not after an hour of training.
"""

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.config.base import read_yaml, validate_value
from genbench.core.errors import ParamsError
from genbench.core.files import flatten
from genbench.core.layout import COMPARE
from genbench.core.metric_registry import METRICS
from genbench.schema import SCHEMAS

MAX_POINTS = 256  # a guard against `seed=range(0,100000)` typed by accident


@dataclass(frozen=True)
class Axis:
    key: str  # dotted params key: `gan.z_dim`
    values: tuple[Any, ...]  # parsed: (32, 64)
    texts: tuple[str, ...]  # as `dvc exp run -S` takes them: ("32", "64")


# One grid point: (key, value, text) per axis.
Point = tuple[tuple[str, Any, str], ...]


def parse_grid(overrides: Sequence[str]) -> list[Axis]:
    """Parse `key=v1,v2` overrides (Hydra's grammar, as `dvc exp run -S` reads them)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    axes = []
    for text in overrides:
        try:
            (override,) = parser.parse_overrides([text])
            if override.is_add() or override.is_delete() or override.is_force_add():
                raise ParamsError(f"sweep {text!r}: +/~ keys are not allowed; name an existing key")
            if override.is_sweep_override():
                values = tuple(override.sweep_iterator())
                texts = tuple(override.sweep_string_iterator())
            else:
                values, texts = (override.value(),), (override.get_value_element_as_str(),)
        except HydraException as err:
            reason = str(err).strip().splitlines()[0]
            raise ParamsError(f"sweep {text!r}: {reason} (syntax: key=v1,v2)") from None
        axes.append(Axis(override.key_or_group, values, texts))
    keys = [axis.key for axis in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise ParamsError(f"sweep: {key} appears twice; list all its values in one override")
    return axes


def expand(axes: Sequence[Axis]) -> list[Point]:
    """The cartesian product of the axes, the first axis varying slowest."""
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if not axes or count == 0:
        raise ParamsError("sweep: the grid is empty; give overrides such as gan.z_dim=32,64")
    if count > MAX_POINTS:
        raise ParamsError(f"sweep: {count} points > {MAX_POINTS}; split the sweep")
    choices = [
        [(axis.key, value, text) for value, text in zip(axis.values, axis.texts, strict=True)]
        for axis in axes
    ]
    return [tuple(point) for point in itertools.product(*choices)]


def set_options(point: Point) -> list[str]:
    """`-S key=value` arguments of `dvc exp run` for one point."""
    return [part for key, _, text in point for part in ("-S", f"{key}={text}")]


def describe(point: Point) -> str:
    """`gan.z_dim=32 ddpm.lr=0.0001`: a point as the user would type it."""
    return " ".join(f"{key}={text}" for key, _, text in point)


def _apply(params: dict, key: str, value: Any, where: str) -> None:
    *parents, leaf = key.split(".")
    node: Any = params
    for part in parents:
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, dict) or leaf not in node:
        raise ParamsError(f"{where}: {key}: no such key in params.yaml")
    node[leaf] = value


def check_points(params_file: str | Path, points: Sequence[Point]) -> None:
    """Validate params.yaml with each point's values applied; ParamsError names the point."""
    raw = read_yaml(params_file)
    for point in points:
        params = copy.deepcopy(raw)
        where = f"{params_file} with {describe(point)}"
        for key, value, _ in point:
            _apply(params, key, value, where)
        for section, schema in SCHEMAS.items():
            if section in params:
                validate_value(where, section, params[section], schema)


def flatten_metrics(metrics: Mapping[str, Any], wanted: Sequence[str]) -> dict[str, Any]:
    """`dvc.api.metrics_show()` of one experiment -> {"gan val fid": 10.7, ...}: each family's
    VALIDATION-split metrics named in wanted (`fid`), as means over the seeds, from
    compare.json. Selection never looks at the test split: the report's numbers stay unbiased.
    """
    compare: dict[str, Any] = {}
    for name, value in metrics.items():
        path, _, key = name.rpartition(":")
        path = path or name
        if Path(path).name == COMPARE and isinstance(value, Mapping):
            compare |= {key: value} if key else dict(value)
    out = {}
    for family, stats in (compare.get("families") or {}).items():
        for leaf, number in flatten(stats.get("val", {})).items():
            parts = leaf.split(".")  # <metric>.mean (the primary feature space's)
            if len(parts) == 2 and parts[1] == "mean" and parts[0] in wanted:
                out[f"{family} val {parts[0]}"] = number
    return out


# What "better" means per metric: the metric registry's, not a copy of it.
HIGHER_IS_BETTER = {m.metric for m in METRICS if m.higher_is_better}


def rank(rows: list[dict[str, Any]], overrides: Sequence[str], wanted: Sequence[str]) -> str:
    """Sort rows in place, best first, by the validation metric of the family the grid varies
    (its first override's section, e.g. gan for gan.z_dim), on the first wanted metric; returns
    the column ranked by ("" when no row has it), which becomes each row's first metric."""
    family = overrides[0].split(".", 1)[0] if overrides else ""
    candidates = [f"{family} val {wanted[0]}"] + [c for r in rows for c in r if " val " in c]
    column = next((c for c in candidates if any(c in r for r in rows)), "")
    if column:
        sign = -1.0 if wanted[0] in HIGHER_IS_BETTER else 1.0
        rows.sort(key=lambda r: sign * r[column] if r.get(column) is not None else float("inf"))
        for index, row in enumerate(rows):  # the ranked column first among the metrics
            first = {k: v for k, v in row.items() if " val " not in k}
            rows[index] = {**first, column: row.get(column), **row}
    return column


def table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Columns (in first-seen order) and cells as text, `-` where a row lacks a column."""
    columns: list[str] = []
    for row in rows:
        columns += [column for column in row if column not in columns]
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    return columns, cells


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A Markdown table, for the printed summary (the flow artifact is a Prefect table)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)
