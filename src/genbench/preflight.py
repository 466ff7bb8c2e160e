"""What `genbench validate` checks beyond the params' own schema: that the stages will find what
they need on this machine (devices, the image folder, Inception weights, the tracking store, the
keys dvc.yaml reads), so a bad value stops `make run` before DVC deletes any output.

Light on purpose: torch is imported only when a params value names a GPU device; nothing here
trains, builds a network or imports diffusers or mlflow.
"""

import itertools
import math
import os
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from genbench.core.errors import DataError, ParamsError
from genbench.core.layout import INCEPTION_FILE
from genbench.core.system import DEFAULT_TRACKING_URI, store_problem
from genbench.families import NAMES

# torch-fidelity 0.4's Inception weights: where it downloads them from
# where DINOv2's hub code and CLIP's weights come from (a HEAD request says if a download can work)
PRETRAINED_URLS = {
    "dinov2": "https://github.com/facebookresearch/dinov2",
    "clip": "https://openaipublic.azureedge.net/clip/models",
}
INCEPTION_URL = (
    f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
)


def check_environment(path: str | Path, params: dict[str, Any]) -> None:
    """Every check of this module; the first problem is a ParamsError naming the key (exit 2)."""
    problem = (
        dvc_keys_problem(path)
        or devices_problem(params)
        or folder_problem(params["data"], params["evaluate"])
        or splits_problem(params["data"], params["evaluate"])
        or inception_problem(params["evaluate"])
        or pretrained_spaces_problem(params["evaluate"])
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
            from genbench.core.device import device_problem  # imports torch: only for GPU names

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
    if not classes and "evaluator" in evaluate.spaces:
        return (
            f"evaluate.feature_extractor / feature_spaces: the 'evaluator' space needs labels, "
            f"and data.folder {data.folder!r} has no class subfolders to train it on; use "
            "inception-v3-compat and other spaces (random-cnn needs none), or add class "
            "subfolders"
        )
    return None


# The bundled and downloadable sources: (images for training, official test images or 0 when
# the source has no official split, classes). A folder is counted on disk.
SOURCE_SIZES = {
    "digits": (1797, 0, 10),
    "mnist": (60_000, 10_000, 10),
    "fashion_mnist": (60_000, 10_000, 10),
    "cifar10": (50_000, 10_000, 10),
}
# Channels of each source's images (a folder's are known after preprocess decodes them).
SOURCE_CHANNELS = {"digits": 1, "mnist": 1, "fashion_mnist": 1, "cifar10": 3}
KID_MIN = 4  # images KID needs in a set (as evaluate.curve_samples)


def splits_problem(data: Any, evaluate: Any) -> str | None:
    """Every split preprocess makes holds enough images: one per class where the split is
    stratified (scikit-learn refuses fewer), and the reference split (test; train under
    protocol: paper) more than evaluate.prc_neighborhood images and at least KID_MIN."""
    if data.source == "folder":
        from genbench.data.sources import image_files

        try:
            files, names = image_files(Path(data.folder))
        except Exception:  # noqa: BLE001 - folder_problem above names what is wrong
            return None
        total, official, classes = len(files), 0, len(names)
    else:
        total, official, classes = SOURCE_SIZES[data.source]
    least = max(classes, 1)
    if official:
        rest, test = total, official
    else:
        test = math.ceil(data.test_fraction * total)
        rest = total - test
        for key, size in (("test_fraction", test), ("test_fraction", rest)):
            if size < least:
                return _split_line(key, data.test_fraction, total, least, classes)
    val = math.ceil(data.val_fraction * rest)
    if min(val, rest - val) < least:
        return _split_line("val_fraction", data.val_fraction, rest, least, classes)
    reference = test if evaluate.reference_split == "test" else rest - val
    need = max(evaluate.prc_neighborhood + 1, KID_MIN)
    if reference < need:
        return (
            f"evaluate.prc_neighborhood = {evaluate.prc_neighborhood}: the {data.source} "
            f"{evaluate.reference_split} split would hold {reference} images; it needs at least "
            f"{need} (the k-th neighbour other than the image itself; KID needs {KID_MIN}): "
            "lower prc_neighborhood or hold out more images"
        )
    return None


def _split_line(key: str, fraction: float, total: int, least: int, classes: int) -> str:
    per_class = f", one per class of {classes}" if classes else ""
    return (
        f"data.{key} = {fraction}: splits {total} images into {math.ceil(fraction * total)} and "
        f"{total - math.ceil(fraction * total)}; each part needs at least {least}{per_class}: "
        "move it away from 0 and 1"
    )


def inception_problem(evaluate: Any) -> str | None:
    """inception-v3-compat: the weights file given is torch-fidelity's, or the download works."""
    if "inception-v3-compat" not in evaluate.spaces:
        return None
    key = "evaluate.inception_weights"
    if evaluate.inception_weights:
        from genbench.evaluation.extractor import weights_file_problem  # torch: only here

        return weights_file_problem(key, Path(evaluate.inception_weights))
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


def pretrained_spaces_problem(evaluate: Any) -> str | None:
    """DINOv2 and CLIP spaces: their weights are in torch hub's cache (or, for CLIP, the file
    in evaluate.space_weights), or their download answers."""
    from genbench.config.evaluate import CLIP, DINOV2

    wanted = [s for s in evaluate.spaces if s in DINOV2 or s in CLIP]
    if not wanted:
        return None
    from genbench.evaluation.extractor import pretrained_problem, pretrained_weights  # torch

    for space in wanted:
        path = evaluate.space_weights.get(space)
        if path and not Path(path).is_file():
            return f"evaluate.space_weights.{space} = {path!r}: no such file"
        if pretrained_weights(space, path) is not None:
            continue
        try:
            with urllib.request.urlopen(
                urllib.request.Request(PRETRAINED_URLS[space.split("-")[0]], method="HEAD"),
                timeout=5,
            ):
                continue
        except OSError:
            return pretrained_problem(space)
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
