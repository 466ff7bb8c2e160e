"""DCGAN (Radford, Metz & Chintala 2016). Importing the package loads only its params."""

from typing import TYPE_CHECKING

from genbench.families.gan.params import GanParams

if TYPE_CHECKING:
    from genbench.families.common.base import Family

PARAMS = GanParams  # light: pydantic only, for `genbench validate` and load_params
__all__ = ["PARAMS", "load"]


def load() -> "Family":
    """The family: networks, step and sampling (imports torch)."""
    from genbench.families.gan.family import FAMILY

    return FAMILY
