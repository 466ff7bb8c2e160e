"""Reading params.yaml into typed sections, with one-line errors that name the bad key.

Each stage loads only the sections it reads, so its DVC code deps stay exact; `genbench validate`
checks the whole file (config/all.py) before `make run` lets DVC touch any output.
"""

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from genbench.errors import ParamsError

# The top-level `seed`: numpy's RandomState accepts [0, 2**32).
Seed = Annotated[int, Field(ge=0, lt=2**32, strict=True)]


class Section(BaseModel):
    """Base of every params section: unknown keys and type coercion ("16" for 16) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a params file into a mapping; a missing file or bad YAML is a ParamsError."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(
            f"{path}: file not found; pass --params with the path of params.yaml"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ParamsError(f"{path}:{where}: {problem}; fix the YAML syntax") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return raw


def format_validation_error(prefix: str, err: ValidationError, model: Any) -> str:
    """One line per pydantic error, joined: `key = value: what is allowed`."""
    parts = []
    for item in err.errors():
        key = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model, item["loc"][:-1]))
            parts.append(f"{key}: unknown key; allowed keys here: {allowed}")
        elif item["type"] == "missing":
            parts.append(f"{key}: required key is missing")
        else:
            parts.append(f"{key} = {item['input']!r}: {item['msg']}")
    return "; ".join(parts)


def _allowed_keys(model: Any, loc: tuple) -> list[str]:
    """Field names of the (nested) model at `loc`, for the 'unknown key' message."""
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            break
        field = model.model_fields.get(str(part))
        model = field.annotation if field is not None else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def validate_value(path: str | Path, key: str, value: Any, schema: Any) -> Any:
    """Validate one top-level value against a Section subclass or an annotated type."""
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ParamsError(f"{path}: {key} = {value!r}: must be a mapping of keys")
            return schema.model_validate(dict(value))
        return TypeAdapter(schema).validate_python(value)
    except ValidationError as err:
        raise ParamsError(f"{path}: {format_validation_error(key, err, schema)}") from None


def load_params(path: str | Path, **schemas: Any) -> dict[str, Any]:
    """Load the named top-level keys of a params file, each validated by its schema.

    `load_params("params.yaml", seed=Seed, data=DataParams)` -> {"seed": 0, "data": DataParams}.
    A missing section takes the section's defaults; a missing scalar (seed) is an error.
    """
    raw = read_yaml(path)
    out = {}
    for key, schema in schemas.items():
        if key not in raw and not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise ParamsError(f"{path}: {key}: required key is missing")
        out[key] = validate_value(path, key, raw.get(key), schema)
    return out


def params_hash(values: Any) -> str:
    """sha256 of a JSON-able structure (pydantic models dumped first), key order ignored."""

    def plain(value: Any) -> Any:
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value

    text = json.dumps(values, sort_keys=True, default=plain)
    return hashlib.sha256(text.encode()).hexdigest()
