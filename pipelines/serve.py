"""`python -m pipelines.serve --cron "0 3 * * *"`: the genbench flow as a scheduled deployment.

Registers two deployments with the Prefect server at PREFECT_API_URL and runs their flow runs
in this process until stopped (Ctrl-C): `genbench/<name>` on the cron schedule, and
`sweep/<name>-sweep` without one (start it from the UI with a grid). Stop this process before
the server: stopped the other way round, it hangs on SIGTERM.
"""

import argparse
import sys
from pathlib import Path

from prefect import serve

from pipelines.cli import add_deployment_args, schedule_or_exit
from pipelines.flows import genbench, sweep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines.serve", description=__doc__)
    add_deployment_args(parser, "nightly")
    parser.add_argument("--repo", default=".", help="the DVC project (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    schedule = schedule_or_exit(args)
    repo = str(Path(args.repo).resolve())
    nightly = genbench.to_deployment(
        name=args.name,
        schedule=schedule,
        parameters={"repo": repo, "pull": args.pull, "push": args.push},
        description=f"The DVC graph of {repo}, on `{args.cron}` ({args.timezone})",
    )
    grid = sweep.to_deployment(
        name=f"{args.name}-sweep",
        parameters={"repo": repo},
        description=f"A sweep of DVC experiments in {repo}: pass `overrides`",
    )
    serve(nightly, grid, limit=1)  # one flow run at a time in this workspace
    return 0


if __name__ == "__main__":
    sys.exit(main())
