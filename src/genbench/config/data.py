"""The `data` section: which images, at which size, split how."""

from typing import Literal, Self

from pydantic import Field, model_validator

from genbench.config.base import Section

SOURCES = ("digits", "mnist", "fashion_mnist", "cifar10", "folder")


class DataParams(Section):
    """Where the images come from and how preprocess shapes them."""

    source: Literal["digits", "mnist", "fashion_mnist", "cifar10", "folder"] = "digits"
    # Side of the square images every model sees; sources are resized (shorter side) and
    # centre-cropped to it.
    image_size: int = Field(16, ge=8, le=256)
    # Share of images held out for evaluation, for sources without an official split.
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    # Share of the remaining (training) images held out as the validation split: sweeps and any
    # model selection rank on it, so the test split is only ever used for the reported numbers.
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    # A directory of images (class subfolders give labels); required when source is `folder`.
    folder: str | None = None
    # `folder` only: the stage fails when more than this share of image files cannot be decoded.
    max_bad_fraction: float = Field(0.01, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _folder_needs_path(self) -> Self:
        if self.source == "folder" and not self.folder:
            raise ValueError(
                "folder: required when source is 'folder'; set it to the directory of images"
            )
        return self
