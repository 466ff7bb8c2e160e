"""Convolutional VAE (Kingma & Welling 2014). Importing the package loads only its params."""

from typing import TYPE_CHECKING

from genbench.families.vae.params import VaeParams

if TYPE_CHECKING:
    from genbench.families.common.base import Family

PARAMS = VaeParams  # light: pydantic only, for `genbench validate` and load_params
__all__ = ["PARAMS", "load"]


def load() -> "Family":
    """The family: networks, step and sampling (imports torch)."""
    from genbench.families.vae.family import FAMILY

    return FAMILY
