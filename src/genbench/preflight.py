"""What `genbench validate` checks beyond the params' own schema: that the stages will find what
they need on this machine (devices, the image folder, Inception weights, the tracking store, the
keys dvc.yaml reads), so a bad value stops `make run` before DVC deletes any output.

Light on purpose: torch is imported only when a params value names a GPU device; nothing here
trains, builds a network or imports diffusers or mlflow.
"""

import itertools
import os
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from genbench.errors import DataError, ParamsError
from genbench.families import NAMES
from genbench.layout import INCEPTION_FILE
from genbench.system import DEFAULT_TRACKING_URI, store_problem

# torch-fidelity 0.4's Inception weights: where it downloads them from, and one of their keys
INCEPTION_URL = (
    f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
)
INCEPTION_KEY = "Conv2d_1a_3x3.conv.weight"


def check_environment(path: str | Path, params: dict[str, Any]) -> None:
    """Every check of this module; the first problem is a ParamsError naming the key (exit 2)."""
    problem = (
        dvc_keys_problem(path)
        or devices_problem(params)
        or folder_problem(params["data"], params["evaluate"])
        or inception_problem(params["evaluate"])
        or tracking_problem()
    )
    if problem:
        raise ParamsError(f"{path}: {problem}")


def dvc_keys_problem(path: str | Path) -> str | None:
    """A params key a dvc.yaml stage lists but params.yaml lacks: DVC would fail on it after
    deleting outputs. dvc.yaml is read beside the params file, else in the working directory."""
    path = Path(path)
    dvc_file = next((d for d in (path.parent / "dvc.yaml", Path("dvc.yaml")) if d.is_file()), None)
    if dvc_file is None:
        return None
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in _dvc_params(yaml.safe_load(dvc_file.read_text(encoding="utf-8")), raw):
        if _lookup(raw, key) is _MISSING:
            return f"{key}: missing, and {dvc_file} reads it; add it (as in the repository's)"
    return None


_MISSING = object()


def _lookup(raw: Any, key: str) -> Any:
    """raw["a"]["b"] for key "a.b", or _MISSING."""
    node = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _dvc_params(dvc: dict, raw: Any) -> list[str]:
    """The params.yaml keys dvc.yaml's stages list (foreach and matrix items substituted)."""
    keys: list[str] = []
    for stage in (dvc or {}).get("stages", {}).values():
        bodies = [stage]
        if "foreach" in stage:
            bodies = [
                {"params": _expand(stage["do"].get("params", []), {"item": i})}
                for i in stage["foreach"]
            ]
        elif "matrix" in stage:
            bodies = [
                {"params": _expand(stage.get("params", []), combo)}
                for combo in _matrix(stage["matrix"], raw)
            ]
        for body in bodies:
            for entry in body.get("params", []):
                if isinstance(entry, str):  # `{file: [keys]}` entries read other files
                    keys.append(entry)
    return list(dict.fromkeys(keys))


def _matrix(matrix: dict, raw: Any) -> list[dict[str, Any]]:
    """Every combination of a matrix stage's values (`${key}` values read from params)."""
    axes = {}
    for name, values in matrix.items():
        if isinstance(values, str) and values.startswith("${") and values.endswith("}"):
            values = _lookup(raw, values[2:-1])
        axes[name] = values if isinstance(values, list) else []
    return [
        {f"item.{name}": value for name, value in zip(axes, combo, strict=True)}
        for combo in itertools.product(*axes.values())
    ]


def _expand(entries: list, items: dict[str, Any]) -> list:
    """Entries with `${item}` / `${item.<name>}` replaced by their values."""
    out = []
    for entry in entries:
        if isinstance(entry, str):
            for name, value in items.items():
                entry = entry.replace("${" + name + "}", str(value))
        out.append(entry)
    return out


def devices_problem(params: dict[str, Any]) -> str | None:
    """An explicit device (cuda, cuda:N, mps) this machine does not have."""
    named = {f"{name}.device": params[name].device for name in NAMES}
    named["evaluate.device"] = params["evaluate"].device
    for key, device in named.items():
        if device not in ("auto", "cpu"):
            from genbench.device import device_problem  # imports torch: only for GPU names

            problem = device_problem(device, key)
            if problem:
                return problem
    return None


def folder_problem(data: Any, evaluate: Any) -> str | None:
    """source folder: data.folder exists, holds images, few unreadable; labels for the evaluator."""
    if data.source != "folder":
        return None
    from genbench.data.sources import check_bad_files, decoded_images, image_files

    root = Path(data.folder)
    try:
        files, classes = image_files(root)
        bad = [str(p.relative_to(root)) for p, image in decoded_images(files) if image is None]
        check_bad_files(root, bad, len(files), data.max_bad_fraction, warn=False)
    except DataError as err:
        return f"data.folder = {data.folder!r}: {err}"
    if not classes and evaluate.feature_extractor == "evaluator":
        return (
            f"evaluate.feature_extractor = 'evaluator': data.folder {data.folder!r} has no class "
            "subfolders (labels) to train it on; use inception-v3-compat or add class subfolders"
        )
    return None


def inception_problem(evaluate: Any) -> str | None:
    """inception-v3-compat: the weights file given is torch-fidelity's, or the download works."""
    if evaluate.feature_extractor != "inception-v3-compat":
        return None
    key = "evaluate.inception_weights"
    if evaluate.inception_weights:
        return _weights_file_problem(key, Path(evaluate.inception_weights))
    if (_torch_hub_dir() / "checkpoints" / INCEPTION_FILE).is_file():
        return None
    try:
        with urllib.request.urlopen(
            urllib.request.Request(INCEPTION_URL, method="HEAD"), timeout=5
        ):
            return None
    except OSError as err:
        reason = str(getattr(err, "reason", err))[:100]
        return (
            f"{key}: not set, and the Inception weights cannot be downloaded ({reason}); set it "
            f"to a local {INCEPTION_FILE} or use evaluate.feature_extractor: evaluator"
        )


def _weights_file_problem(key: str, path: Path) -> str | None:
    if not path.is_file():
        return f"{key} = {str(path)!r}: no such file; give the path of {INCEPTION_FILE}"
    from genbench.checkpoint import CheckpointError, load  # torch: only for this check

    try:
        state = load(path)
    except CheckpointError as err:
        return f"{key} = {str(path)!r}: not loadable ({str(err)[-120:]})"
    if not isinstance(state, dict) or INCEPTION_KEY not in state:
        return f"{key} = {str(path)!r}: not torch-fidelity's Inception weights ({INCEPTION_FILE})"
    return None


def _torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else the XDG cache."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch"
    )
    return Path(home) / "hub"


def tracking_problem() -> str | None:
    """The MLflow store (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db) cannot take runs."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    reason = store_problem(uri)
    if reason is None:
        return None
    return f"MLFLOW_TRACKING_URI = {uri!r}: {reason}; fix it or unset MLFLOW_TRACKING_URI"
