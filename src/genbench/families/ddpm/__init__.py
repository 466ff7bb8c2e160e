"""DDPM (Ho et al. 2020) with diffusers. Importing the package loads only its params."""

from typing import TYPE_CHECKING

from genbench.families.ddpm.params import DdpmParams

if TYPE_CHECKING:
    from genbench.families.common.base import Family

PARAMS = DdpmParams  # light: pydantic only, for `genbench validate` and load_params
__all__ = ["PARAMS", "load"]


def load() -> "Family":
    """The family: networks, step and sampling (imports torch)."""
    from genbench.families.ddpm.family import FAMILY

    return FAMILY
