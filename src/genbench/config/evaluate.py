"""The `evaluate` section: how generated images are compared with the test split."""

from typing import Literal, Self

from pydantic import Field, model_validator

from genbench.config.base import DEVICE_PATTERN, Section


class EvaluatorParams(Section):
    """The offline feature extractor: a small CNN classifier trained on the train split's labels."""

    steps: int = Field(1000, ge=1, le=1_000_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(2e-3, gt=0.0, le=1.0)
    feature_dim: int = Field(128, ge=2, le=4096)  # penultimate features used by FID/KID/PRC


class EvaluateParams(Section):
    """Sample count, extractor and metric settings shared by every model's evaluation."""

    num_samples: int = Field(1000, ge=2, le=1_000_000)  # generated (and real-floor) images
    feature_extractor: Literal["evaluator", "inception-v3-compat"] = "evaluator"
    # A local copy of torch-fidelity's Inception weights (weights-inception-2015-12-05-6726825d.pth)
    # for machines without internet; None lets torch-fidelity download them.
    inception_weights: str | None = None
    kid_subset_size: int = Field(1000, ge=2)  # capped at the smaller of the two sets
    kid_subsets: int = Field(100, ge=1, le=10_000)
    isc_splits: int = Field(10, ge=1)
    prc_neighborhood: int = Field(3, ge=1)  # k of the k-NN: below num_samples
    # random pairs for the diversity SSIM; all pairs are held in memory at once (10^4 pairs of
    # 64×64 RGB images: ~1 GB of float intermediates)
    ssim_pairs: int = Field(500, ge=1, le=10_000)
    batch_size: int = Field(256, ge=1, le=65_536)  # sampling and feature batches
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    evaluator: EvaluatorParams = Field(default_factory=EvaluatorParams)

    @model_validator(mode="after")
    def _splits_fit(self) -> Self:
        for key in ("isc_splits", "prc_neighborhood"):
            value, limit = getattr(self, key), self.num_samples
            limit -= key == "prc_neighborhood"  # the k-th neighbour other than the image itself
            if value > limit:
                raise ValueError(
                    f"{key} = {value}: must be at most {limit} with num_samples = "
                    f"{self.num_samples}; lower it or raise num_samples"
                )
        return self
