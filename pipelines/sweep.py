"""`python -m pipelines.sweep gan.z_dim=32,64 ddpm.lr=1e-4,2e-4`: one DVC experiment per point.

Overrides take `dvc exp run -S`'s syntax; without any, orchestration.sweep.grid in params.yaml.
Each point runs as `dvc exp run --temp` (the workspace stays as it is) on top of the last
commit, so commit dvc.lock first for unchanged stages to be reused.
"""

import argparse
import sys

from pipelines import grid
from pipelines.cli import finish, prefect_api
from pipelines.flows import ranking_note, sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.sweep", description=__doc__)
    parser.add_argument("overrides", nargs="*", help="key=v1,v2 (default: the params' grid)")
    parser.add_argument("--repo", default=".", help="the DVC project (default: %(default)s)")
    parser.add_argument("--metrics", nargs="+", help="metric names in the table (e.g. fid)")
    args = parser.parse_args(argv)
    with prefect_api():
        state = sweep(
            repo=args.repo, overrides=args.overrides, metrics=args.metrics, return_state=True
        )
    return finish(state, describe)


def describe(rows: list[dict]) -> list[str]:
    """How the rows are ranked, the metrics table (also a flow artifact), then where the
    experiments are. The flow returns the rows already ranked, best first."""
    columns, cells = grid.table(rows)
    ranked_by = next((c for c in columns if " val " in c), "")
    return [
        f"sweep: {ranking_note(ranked_by)}",
        grid.markdown(columns, cells),
        f"{len(rows)} DVC experiments: dvc exp show",
    ]


if __name__ == "__main__":
    sys.exit(main())
