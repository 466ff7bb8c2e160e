"""The model families by name. Each family module is imported only when asked for, so a stage
training one family does not import (or depend on) the others' code.

A family module provides: PARAMS (its params section model), build(params, channels, size) ->
Parts, build_generating(params, channels, size) -> nn.Module, sample(net, params, n, generator).
"""

import importlib
from types import ModuleType

FAMILIES = {
    "gan": "genbench.training.gan",
    "vae": "genbench.training.vae",
    "ddpm": "genbench.training.ddpm",
}


def load_family(name: str) -> ModuleType:
    """The family module for `name` (gan, vae, ddpm)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return importlib.import_module(FAMILIES[name])
