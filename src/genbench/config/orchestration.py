"""The `orchestration` section: how Prefect runs the DVC graph (pipelines/, docs/orchestration.md).

No stage lists it in dvc.yaml, so changing it reruns nothing. The grid's syntax is parsed by
pipelines/sweep.py (it is `dvc exp run -S`'s); here only its shape is checked.
"""

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from genbench.config.base import Section

# `key=v1,v2`: a params key (dotted), `=`, one or more comma-separated values
Override = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*=.+$")]
MetricName = Annotated[str, Field(pattern=r"^\w+$")]
OptionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


MAX_WORKERS = 256


class SweepParams(Section):
    """The default grid of the `sweep` flow and the metrics its table shows."""

    grid: list[Override] = Field(default_factory=list)
    # Last keys of metrics/*.json (`fid` matches `scores.fid`) shown per grid point.
    metrics: list[MetricName] = Field(default_factory=lambda: ["fid", "kid_mean"], min_length=1)


class OrchestrationParams(Section):
    """How many stages run at once and where, retries of a failed stage's Prefect task, and
    the sweep defaults."""

    # Stages (and sweep points) at once, each in its own workspace, torch threads = cores /
    # workers. `auto`: 3 per CUDA device (each at least 4 threads, at least 1 per device),
    # else one per core (pipelines/workers.py). 1: one at a time, in place.
    workers: Literal["auto"] | int = "auto"
    # A Dask scheduler (`tcp://host:8786`): each stage runs on one of its workers, in that
    # worker's clone, with the DVC remote between them (docs/orchestration.md). None: here.
    cluster: str | None = None

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: object) -> object:
        if value == "auto" or (type(value) is int and 1 <= value <= MAX_WORKERS):
            return value
        raise ValueError(f"must be auto or a whole number from 1 to {MAX_WORKERS}")

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str | None) -> str | None:
        if value is None or re.fullmatch(r"(tcp|tls|ws|wss)://\S+", value):
            return value
        raise ValueError("must be a Dask scheduler address such as tcp://host:8786, or null")

    # A rerun training resumes from its last checkpoint, so a retry repeats little work.
    retries: int = Field(1, ge=0, le=10)
    retry_delay_seconds: int = Field(30, ge=0, le=86_400)
    sweep: SweepParams = Field(default_factory=SweepParams)
    # `python -m pipelines.ablation`: named options, each a list of `key=value` overrides of one
    # family's section, each run over compare.seeds against that family's defaults on the
    # validation split (docs/ablations.md).
    ablation: dict[OptionName, list[Override]] = Field(default_factory=dict)
