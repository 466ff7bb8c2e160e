"""Prefect orchestration of the DVC graph: the only package that imports prefect.

DVC stays the source of truth for the stage graph and for what is up to date (`graph.py` reads
it through DVC's API, `repro.py` runs `dvc repro`/`dvc exp run`); Prefect runs, schedules,
retries and shows (`flows.py`); independent stages run at once in their own worktrees or on a
Dask cluster (`parallel.py`, `schedule.py`, `workspace.py`, `workers.py`). Entry points:
`python -m pipelines.run`, `pipelines.sweep`, `pipelines.serve` and `pipelines.deploy`
(docs/orchestration.md).
"""
