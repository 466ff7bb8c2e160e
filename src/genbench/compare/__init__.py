"""The `compare` stage: every family's metrics over its seeds, intervals, tests and the verdict."""
