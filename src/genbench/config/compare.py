"""The `compare` section: the equal training budget, the seeds, the confidence of the verdict."""

from typing import Literal, Self

from pydantic import Field, model_validator

from genbench.config.base import Section, Seed

MAX_IMAGES = 1e12  # an images budget's bound (a flops budget's is the field's, 1e24)


class Budget(Section):
    """How much training every family gets: the same FLOPs, the same images, or own steps."""

    # flops: each family trains for floor(amount / its FLOPs per step) steps (counted over one
    # real step, forward and backward, at its batch size); images: floor(amount / batch_size)
    # steps; steps: each family's own `steps` (amount unused).
    unit: Literal["flops", "images", "steps"] = "flops"
    # At most 1e24 FLOPs or 1e12 images (training also refuses more than 10 million steps).
    amount: float | None = Field(None, gt=0, le=1e24)
    # flops and images: the share of `amount` a family may leave unspent (its last partial
    # step); training refuses a budget that leaves more, since the spends would then differ.
    tolerance: float = Field(0.05, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _amount_for_shared_units(self) -> Self:
        if self.unit == "images" and self.amount is not None and self.amount > MAX_IMAGES:
            raise ValueError(
                f"amount = {self.amount:.3g}: more than {MAX_IMAGES:.0e} images; lower it"
            )
        if self.unit != "steps" and self.amount is None:
            raise ValueError(
                f"amount: required when unit is {self.unit!r}; set it (e.g. 3.0e+12) or use "
                "unit: steps for each family's own steps"
            )
        return self


class CompareParams(Section):
    """How families are compared: every family trains once per seed on the same budget."""

    budget: Budget = Field(default_factory=lambda: Budget(unit="steps"))
    # Training and sampling seeds: one trained model per family and seed.
    seeds: list[Seed] = Field(default_factory=lambda: [0, 1, 2], min_length=1, max_length=100)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)  # of the intervals and the verdict's tests
    # Fractions of the budget at which training keeps the EMA weights of the generating network
    # (quality against compute: the evaluate stage scores each). 1.0, the final weights, is always
    # a point of the curve; geometric spacing reads evenly on the report's log axis.
    snapshots: list[float] = Field(
        default_factory=lambda: [0.125, 0.25, 0.5, 1.0], min_length=1, max_length=32
    )

    @model_validator(mode="after")
    def _distinct_seeds(self) -> Self:
        repeated = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"seeds: {repeated[0]} is listed twice; list each seed once")
        return self

    @model_validator(mode="after")
    def _snapshot_fractions(self) -> Self:
        for fraction in self.snapshots:
            if not 0.0 < fraction <= 1.0:
                raise ValueError(
                    f"snapshots: {fraction} is not a fraction of the budget; use values in (0, 1]"
                )
        if self.snapshots != sorted(set(self.snapshots)):
            raise ValueError(
                f"snapshots: {self.snapshots} must be increasing with no repeats, "
                "e.g. [0.125, 0.25, 0.5, 1.0]"
            )
        return self

    @property
    def curve_fractions(self) -> list[float]:
        """The fractions of the budget every model is scored at: the snapshots, then 1.0."""
        return self.snapshots if self.snapshots[-1] == 1.0 else [*self.snapshots, 1.0]
