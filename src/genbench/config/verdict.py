"""The `verdict` section: how the compare stage words its ranking, and seeds on demand.

A section of its own, beside `compare`, so that changing how verdicts are worded never touches
what the training stages read (they load `compare` for the budget and the snapshots).
"""

from pydantic import Field

from genbench.config.base import Section, Seed


class VerdictParams(Section):
    """Equivalence margin and the sequential looks of `pipelines.run --until-decided`."""

    # "equivalent" (≈) only when TOST shows two families' difference inside ± this share: a
    # ratio within [1/(1 + m), 1 + m] on log-scale metrics, m × their mean on raw ones.
    equivalence_margin: float = Field(0.1, gt=0.0, le=1.0)
    # Seeds on demand sets these: the planned number of looks at the data (each tested at
    # (1 - compare.confidence) / looks: Bonferroni over looks, so adding seeds after looking keeps
    # the error rate) and the seeds it started from (a part of compare.seeds).
    sequential_looks: int = Field(1, ge=1, le=20, strict=True)
    initial_seeds: list[Seed] | None = None

    def initial_problem(self, seeds: list[int]) -> str | None:
        """Why initial_seeds does not fit compare.seeds (None: it does)."""
        missing = sorted(set(self.initial_seeds or []) - set(seeds))
        if missing:
            return (
                f"verdict.initial_seeds: {missing[0]} is not in compare.seeds; initial_seeds "
                "are the seeds a sequential run started from, a part of compare.seeds"
            )
        return None
