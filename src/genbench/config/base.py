"""Reading params.yaml into typed sections, with one-line errors that name the bad key.

Each stage loads only the sections it reads, so its DVC code deps stay exact; `genbench validate`
checks the whole file (schema.py) before `make run` lets DVC touch any output.
"""

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from genbench.core.errors import ParamsError

# The device names params.yaml and `genbench sample --device` take (checked without torch).

# The top-level `seed`: numpy's RandomState accepts [0, 2**32).
Seed = Annotated[int, Field(ge=0, lt=2**32, strict=True)]


class Section(BaseModel):
    """Base of every params section: unknown keys and type coercion ("16" for 16) are refused."""

    # allow_inf_nan False: `.inf` and `.nan` are refused by name, not compared with the bounds
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class _Missing:
    """The value of a key that params.yaml does not have (None would mean `key: null`)."""


MISSING = _Missing()


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a params file into a mapping; a missing file or bad YAML is a ParamsError."""
    path = Path(path)
    try:
        text = _read_text(path)
        _refuse_anchors_and_depth(path, text)
        _refuse_duplicate_keys(path, yaml.compose(text, Loader=yaml.SafeLoader), "")
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ParamsError(f"{path}:{where}: {problem}; fix the YAML syntax") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    _refuse_parser_disagreement(path, raw, _dvc_reading(text))
    return raw


# Deeper nesting than any params section needs (sections are two levels deep); PyYAML's
# composer recurses per level, so a deep file would end in RecursionError, not in one line.
MAX_DEPTH = 16


def _refuse_anchors_and_depth(path: Path, text: str) -> None:
    """Refuse anchors and aliases (`&a`, `*a`: an alias bomb expands to billions of keys, and
    merge keys `<<` are read differently by YAML 1.1 and 1.2) and nesting deeper than MAX_DEPTH.
    Walks the parser's events, which neither recurse nor expand aliases."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ParamsError(
                f"{path}: line {line}: YAML anchors and aliases (&name, *name) are not read in "
                "params files; write the values out"
            )
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ParamsError(
                    f"{path}: line {line}: nested deeper than {MAX_DEPTH} levels; params "
                    "sections are mappings of values"
                )
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def _dvc_reading(text: str) -> Any:
    """The file as DVC reads it: ruamel.yaml's YAML 1.2 safe loader (dvc.utils.serialize)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        return None  # PyYAML parsed it: the difference shows below, naming the key


def _refuse_parser_disagreement(path: Path, ours: Any, dvcs: Any, key: str = "") -> None:
    """genbench reads params with PyYAML (YAML 1.1), DVC with ruamel (YAML 1.2): `010` is 8 for
    one and 10 for the other, `yes` true or a string, `1e10` a string or a float. DVC's value
    decides what reruns and what dvc.lock records, ours what the stage does: a value the two
    read differently is refused, naming the key and both readings."""
    if isinstance(ours, dict) and isinstance(dvcs, dict) and ours.keys() == dvcs.keys():
        for name in ours:
            inner = f"{key}.{name}" if key else str(name)
            _refuse_parser_disagreement(path, ours[name], dvcs[name], inner)
        return
    if isinstance(ours, list) and isinstance(dvcs, list) and len(ours) == len(dvcs):
        for i, (a, b) in enumerate(zip(ours, dvcs, strict=True)):
            _refuse_parser_disagreement(path, a, b, f"{key}[{i}]")
        return
    if type(ours) is type(dvcs) and ours == dvcs:
        return
    if isinstance(ours, float) and isinstance(dvcs, float) and ours != ours and dvcs != dvcs:
        return  # .nan on both sides (refused later by the schema, by name)
    raise ParamsError(
        f"{path}: {key or 'the file'}: YAML 1.1 (genbench) reads {ours!r} but DVC's YAML 1.2 "
        f"reads {dvcs!r}; {_agreeing_form(ours, dvcs)}"
    )


def _agreeing_form(ours: Any, dvcs: Any) -> str:
    """How to write a value both parsers read alike."""
    if isinstance(ours, int) and isinstance(dvcs, int) and not isinstance(ours, bool):
        return "write the number without leading zeros (or quote it to mean a string)"
    if isinstance(ours, bool) or isinstance(dvcs, bool):
        return "write true or false (or quote the word to mean a string)"
    if isinstance(ours, str) and isinstance(dvcs, float):
        return "write the float with a dot, e.g. 1.0e+10 (or quote it to mean a string)"
    return "quote the value to mean a string, or write it in YAML 1.2 form"


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; a missing file or a non-UTF-8 byte is a ParamsError naming where."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise ParamsError(
            f"{path}: file not found; pass --params with the path of params.yaml"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_no = data.count(b"\n", 0, err.start) + 1
        line = data.splitlines()[line_no - 1].decode("utf-8", "replace")
        key = line.split(":", 1)[0].strip() if ":" in line else "?"
        raise ParamsError(
            f"{path}: line {line_no} ({key}): byte 0x{data[err.start]:02x} is not UTF-8; "
            "retype that line or save the file as UTF-8"
        ) from None


def _refuse_duplicate_keys(path: Path, node: yaml.Node | None, prefix: str) -> None:
    """YAML keeps the last of two equal keys silently; refuse them, naming the dotted key."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(path, item, prefix)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise ParamsError(f"{path}: line {line}: {key}: duplicate key; keep one of them")
        seen.add(key)
        _refuse_duplicate_keys(path, value_node, key)


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
        elif not item["loc"] and item["type"] == "value_error":
            # a cross-field check: its message starts with the field it names (`isc_splits = 20`)
            parts.append(
                f"{prefix}.{item['ctx']['error']}" if prefix else str(item["ctx"]["error"])
            )
        elif item["type"] == "finite_number":
            parts.append(f"{key} = {item['input']!r}: must be a finite number")
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
    """Validate one top-level value against a Section subclass or an annotated type.

    A missing section (MISSING) takes the section's defaults; `section: null` is refused.
    """
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            if value is MISSING:
                value = {}
            if value is None:
                raise ParamsError(
                    f"{path}: {key}: null: give the section's keys, or `{key}: {{}}` for defaults"
                )
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
        out[key] = validate_value(path, key, raw.get(key, MISSING), schema)
    return out


def params_hash(values: Any) -> str:
    """sha256 of a JSON-able structure (pydantic models dumped first), key order ignored."""

    def plain(value: Any) -> Any:
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value

    text = json.dumps(values, sort_keys=True, default=plain)
    return hashlib.sha256(text.encode()).hexdigest()
