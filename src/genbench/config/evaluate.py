"""The `evaluate` section: how generated images are compared with the reference split."""

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from genbench.config.base import Section
from genbench.core.system import DEVICE_PATTERN

# The feature spaces an evaluation can score in (README "Feature spaces"): the offline ones,
# then torch-fidelity 0.4's pretrained extractors, which need their weights (a download, torch
# hub's cache, or for CLIP and Inception a local file).
EVALUATOR, RANDOM_CNN, INCEPTION = "evaluator", "random-cnn", "inception-v3-compat"
OFFLINE_SPACES = (EVALUATOR, RANDOM_CNN)
DINOV2 = ("dinov2-vit-s-14", "dinov2-vit-b-14", "dinov2-vit-l-14", "dinov2-vit-g-14")
CLIP = (
    "clip-rn50",
    "clip-rn101",
    "clip-rn50x4",
    "clip-rn50x16",
    "clip-rn50x64",
    "clip-vit-b-32",
    "clip-vit-b-16",
    "clip-vit-l-14",
    "clip-vit-l-14-336px",
)
SPACES = (*OFFLINE_SPACES, INCEPTION, *DINOV2, *CLIP)

# `protocol: paper` fixes these keys to the usual protocol of published FIDs on these datasets
# (Inception features of 50,000 samples against the training split's statistics), with FD in
# DINOv2 ViT-L/14's space beside it, as EDM2 (Karras et al. 2024) reports it.
PAPER_PRESET = {
    "feature_extractor": INCEPTION,
    "feature_spaces": ["dinov2-vit-l-14"],
    "num_samples": 50_000,
}


class EvaluatorParams(Section):
    """The offline feature extractor: a small CNN classifier trained on the train split's labels."""

    steps: int = Field(1000, ge=1, le=1_000_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(2e-3, gt=0.0, le=1.0)
    feature_dim: int = Field(128, ge=2, le=4096)  # penultimate features used by FID/KID/PRC
    # The least test-split accuracy an evaluator must reach for its features to be trusted:
    # below it, train_evaluator and every evaluation stop (an lr of 1.0 gave 0.103, chance on
    # ten classes, and FID 0.000 for every model). The default evaluator reaches 0.99 on the
    # digits; lower it for harder data (CIFAR-10) rather than read FIDs of a broken extractor.
    min_accuracy: float = Field(0.9, ge=0.0, le=1.0)


class EvaluateParams(Section):
    """Sample count, extractor and metric settings shared by every model's evaluation."""

    # custom: the keys below, scored against the test split; paper: PAPER_PRESET overrides
    # feature_extractor and num_samples, and the reference is the train split
    protocol: Literal["custom", "paper"] = "custom"
    num_samples: int = Field(1000, ge=4, le=1_000_000)  # generated (and real-floor) images; KID: 4+
    # Images per point of the quality-against-compute curve (FID and KID of each snapshot in
    # compare.snapshots; capped at num_samples); 0 scores no curve. Fewer than the full count:
    # the curve's points compare with each other and with the floor at this count only.
    curve_samples: int = Field(100, ge=0, le=1_000_000)
    # The primary feature space: its numbers carry the IS, the curve, memorisation, the val
    # split (sweeps) and the report's main table.
    feature_extractor: Literal["evaluator", "inception-v3-compat"] = "evaluator"
    # Further spaces: each scores FID, KID, precision/recall/density/coverage of every model and
    # gets its own verdict; the headline says whether the spaces agree (README "Feature spaces").
    feature_spaces: list[str] = Field(default_factory=lambda: [RANDOM_CNN], max_length=8)
    # Local weights files of CLIP spaces (OpenAI's TorchScript .pt file), by space name: for
    # machines without internet. Inception's: inception_weights; DINOv2: torch hub's cache only.
    space_weights: dict[str, str] = Field(default_factory=dict)
    # A local copy of torch-fidelity's Inception weights (weights-inception-2015-12-05-6726825d.pth)
    # for machines without internet; None lets torch-fidelity download them.
    inception_weights: str | None = None
    # Capped at half the smaller of the two sets, so that every subset draws both sets afresh
    # (a subset holding a whole set repeats that set's sampling error in every estimate).
    kid_subset_size: int = Field(1000, ge=2)
    kid_subsets: int = Field(100, ge=1, le=10_000)
    isc_splits: int = Field(10, ge=1)
    prc_neighborhood: int = Field(3, ge=1)  # k of the k-NN (precision/recall/density/coverage)
    # Precision/recall/density/coverage compare sets of one size (recall grows with the generated
    # set's size): the larger set is subsampled to the smaller one's size, this many times.
    prc_repeats: int = Field(10, ge=1, le=1000)
    # At most this many images per side in those sets: prdc holds three n×n distance matrices
    # (10,000: ~1.2 GB), the set size of Naeem et al. 2020.
    prc_max_size: int = Field(10_000, ge=2, le=50_000)
    # A sample is a copy when it is closer to a training image than this percentile of the test
    # images' distances to their nearest training image (memorisation, extractor features).
    memorisation_percentile: float = Field(1.0, gt=0.0, lt=100.0)
    # random pairs for the diversity SSIM; all pairs are held in memory at once (10^4 pairs of
    # 64×64 RGB images: ~1 GB of float intermediates)
    ssim_pairs: int = Field(500, ge=1, le=10_000)
    batch_size: int = Field(256, ge=1, le=65_536)  # sampling and feature batches
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    evaluator: EvaluatorParams = Field(default_factory=EvaluatorParams)

    @model_validator(mode="before")
    @classmethod
    def _paper_preset(cls, data: Any) -> Any:
        """protocol: paper overrides the keys it fixes (the card records the values used)."""
        if isinstance(data, dict) and data.get("protocol") == "paper":
            return {**data, **PAPER_PRESET}
        return data

    @property
    def reference_split(self) -> str:
        """The split every sample is scored against: the papers' train split, else test."""
        return "train" if self.protocol == "paper" else "test"

    @property
    def spaces(self) -> list[str]:
        """Every feature space scored, the primary first."""
        return [self.feature_extractor, *self.feature_spaces]

    @model_validator(mode="after")
    def _known_spaces(self) -> Self:
        for name in self.feature_spaces:
            if name not in SPACES:
                raise ValueError(
                    f"feature_spaces: {name!r} is not a feature space genbench knows; use "
                    f"{', '.join(OFFLINE_SPACES)}, {INCEPTION}, dinov2-vit-*-14 or clip-*"
                )
        if len(set(self.spaces)) != len(self.spaces):
            raise ValueError(
                f"feature_spaces {self.feature_spaces} repeats a space or the primary one "
                f"(feature_extractor: {self.feature_extractor}); list each space once"
            )
        for name in self.space_weights:
            if name not in CLIP or name not in self.spaces:
                raise ValueError(
                    f"space_weights: {name!r} is not a clip-* space listed in feature_spaces; "
                    "weights files here are for CLIP (Inception's: inception_weights)"
                )
        return self

    @model_validator(mode="after")
    def _curve_size(self) -> Self:
        if 0 < self.curve_samples < 4:
            raise ValueError(
                f"curve_samples = {self.curve_samples}: KID needs at least 4 images; "
                "use 4 or more, or 0 for no curve"
            )
        return self

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
