"""The whole params.yaml as one model, for `genbench validate` (stages load only their sections)."""

from pathlib import Path
from typing import Any

from genbench.config.base import MISSING, Seed, read_yaml, validate_value
from genbench.config.compare import CompareParams
from genbench.config.data import DataParams
from genbench.config.evaluate import EvaluateParams
from genbench.config.orchestration import OrchestrationParams
from genbench.config.verdict import VerdictParams
from genbench.core.errors import ParamsError
from genbench.families import NAMES, params_class

# Every top-level key and its schema; the report section joins here.
SCHEMAS: dict[str, Any] = {
    "seed": Seed,
    "data": DataParams,
    **{name: params_class(name) for name in NAMES},  # each family's section
    "evaluate": EvaluateParams,
    "compare": CompareParams,
    "verdict": VerdictParams,
    "orchestration": OrchestrationParams,
}


def validate_params(path: str | Path) -> dict[str, Any]:
    """Validate every section of a params file; unknown top-level keys are refused too."""
    raw = read_yaml(path)
    unknown = sorted(set(raw) - set(SCHEMAS), key=str)  # keys may be of mixed types (1, "a")
    if unknown:
        raise ParamsError(
            f"{path}: {unknown[0]}: unknown top-level key; allowed: {', '.join(SCHEMAS)}"
        )
    if "seed" not in raw:
        raise ParamsError(f"{path}: seed: required key is missing")
    params = {
        key: validate_value(path, key, raw.get(key, MISSING), schema)
        for key, schema in SCHEMAS.items()
    }
    check_image_size(path, params)
    problem = params["verdict"].initial_problem(params["compare"].seeds)
    if problem:
        raise ParamsError(f"{path}: {problem}")
    return params


def check_image_size(path: str | Path, params: dict[str, Any]) -> None:
    """Every family's networks fit data.image_size (each family says how: size_problem)."""
    image_size = params["data"].image_size
    for name in NAMES:
        problem = params[name].size_problem(name, image_size)
        if problem:
            raise ParamsError(f"{path}: {problem}")
