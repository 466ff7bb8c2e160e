"""The model families by name: gan, vae, ddpm, each a package of its own.

A family's package is imported only when it is asked for, so a stage that trains one family
neither imports nor depends on another's code. The imports below are plain `from ... import`
statements inside functions (no importlib), so import-linter sees every edge.

Add a family: see docs/architecture.md ("Add a family").
"""

from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genbench.config.train import TrainParams
    from genbench.families.common.base import Family


def _gan() -> ModuleType:
    from genbench.families import gan

    return gan


def _vae() -> ModuleType:
    from genbench.families import vae

    return vae


def _ddpm() -> ModuleType:
    from genbench.families import ddpm

    return ddpm


_PACKAGES = {"gan": _gan, "vae": _vae, "ddpm": _ddpm}
NAMES = tuple(_PACKAGES)


def _package(name: str) -> ModuleType:
    if name not in _PACKAGES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(NAMES)}")
    return _PACKAGES[name]()


def params_class(name: str) -> "type[TrainParams]":
    """A family's params section model; imports only its params module (quick: no torch)."""
    return _package(name).PARAMS


def load_family(name: str) -> "Family":
    """The whole family `name`: networks, training step, sampling."""
    return _package(name).load()
