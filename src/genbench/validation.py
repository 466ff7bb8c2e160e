"""Every check that runs before any stage: the DVC stage `validate` (first in the graph) and the
flow (`python -m pipelines.run`) call check_all.

`genbench validate` (schema.py and preflight.py) checks the params file and this machine
without importing torch; this adds what needs torch or the network: the steps each family's
budget buys (its FLOPs per step are counted on a real step), and whether a source that must be
downloaded can be.
"""

import json
import urllib.request
from pathlib import Path
from typing import Any

from torchvision import datasets

from genbench.core.errors import ParamsError
from genbench.core.layout import SOURCE_FILE
from genbench.families import NAMES, load_family
from genbench.preflight import SOURCE_CHANNELS, check_environment
from genbench.schema import validate_params
from genbench.training.budget import budget_steps, step_flops


def source_url(source: str) -> str | None:
    """Where download fetches a remote source first (torchvision's first mirror), or None."""
    if source == "cifar10":
        return datasets.CIFAR10.url
    remote = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}.get(source)
    return None if remote is None else f"{remote.mirrors[0]}{remote.resources[0][0]}"


def check_all(path: str | Path, raw_dir: str | Path | None = None) -> dict[str, Any]:
    """validate_params, check_environment, check_budgets and (with raw_dir) check_download; the
    first problem is a ParamsError naming the key. Returns the params and the budget's steps."""
    params = validate_params(path)
    check_environment(path, params)
    steps = check_budgets(path, params)
    if raw_dir is not None:
        check_download(path, params["data"].source, Path(raw_dir))
    return {"params": params, "steps": steps}


def check_budgets(path: str | Path, params: dict[str, Any]) -> dict[str, int]:
    """Each family's steps under compare.budget, as its training counts them, with the same
    refusals (no step, more than MAX_STEPS, more than the tolerance left unspent). A `folder`
    source's channels are known only after preprocess: each training checks its own then."""
    budget = params["compare"].budget
    channels = SOURCE_CHANNELS.get(params["data"].source)
    if budget.unit == "steps" or channels is None:
        return {}
    steps = {}
    for name in NAMES:
        cfg = params[name]
        flops = step_flops(load_family(name), cfg, channels, params["data"].image_size)
        try:
            steps[name] = budget_steps(budget, cfg, flops, name)
        except ParamsError as err:
            raise ParamsError(f"{path}: {err}") from None
    return steps


def check_download(path: str | Path, source: str, raw_dir: Path) -> None:
    """A remote source that download must fetch (raw_dir holds another source, or nothing) is
    reachable: else DVC would delete raw_dir and then fail the download."""
    url = source_url(source)
    if url is None or _raw_source(raw_dir) == source:
        return
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10):
            return
    except OSError as err:
        reason = str(getattr(err, "reason", err))[:100]
        raise ParamsError(
            f"{path}: data.source = {source!r}: its download ({url}) is unreachable ({reason}); "
            "connect this machine to the internet, or use data.source: digits or folder"
        ) from None


def _raw_source(raw_dir: Path) -> str | None:
    """The source download last put in raw_dir (its source.json), or None."""
    try:
        return json.loads((raw_dir / SOURCE_FILE).read_text())["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
