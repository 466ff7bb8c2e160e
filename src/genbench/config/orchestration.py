"""The `orchestration` section: how Prefect runs the DVC graph (pipelines/, docs/orchestration.md).

No stage lists it in dvc.yaml, so changing it reruns nothing. The grid's syntax is parsed by
pipelines/sweep.py (it is `dvc exp run -S`'s); here only its shape is checked.
"""

from typing import Annotated

from pydantic import Field

from genbench.config.base import Section

# `key=v1,v2`: a params key (dotted), `=`, one or more comma-separated values
Override = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*=.+$")]
MetricName = Annotated[str, Field(pattern=r"^\w+$")]


class SweepParams(Section):
    """The default grid of the `sweep` flow and the metrics its table shows."""

    grid: list[Override] = Field(default_factory=list)
    # Last keys of metrics/*.json (`fid` matches `scores.fid`) shown per grid point.
    metrics: list[MetricName] = Field(default_factory=lambda: ["fid", "kid_mean"], min_length=1)


class OrchestrationParams(Section):
    """Retries of a failed stage's Prefect task, and the sweep defaults."""

    # A rerun training resumes from its last checkpoint, so a retry repeats little work.
    retries: int = Field(1, ge=0, le=10)
    retry_delay_seconds: int = Field(30, ge=0, le=86_400)
    sweep: SweepParams = Field(default_factory=SweepParams)
