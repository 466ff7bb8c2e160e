"""`python -m pipelines.deploy --pool genbench`: the deployments for a work pool's workers.

Unlike `pipelines.serve` (runs in the serving process), these runs go to a work pool and are
picked up by any `prefect worker start --pool genbench` process, one per machine. `--source`
says where a worker gets the code: this checkout (one machine, or a shared disk) or a git URL
(each run clones it; pass --pull/--push so the clone fetches and returns DVC outputs through
the DVC remote). The pool is created (type process) when it does not exist.
"""

import argparse
import sys
from pathlib import Path

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound

from pipelines.cli import add_deployment_args, schedule_or_exit
from pipelines.flows import genbench, sweep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines.deploy", description=__doc__)
    parser.add_argument("--pool", default="genbench", help="work pool (default: %(default)s)")
    parser.add_argument("--source", default=".", help="checkout path or git URL (default: .)")
    add_deployment_args(parser, "nightly-pool")
    return parser


def ensure_pool(name: str) -> None:
    """Create a process work pool called `name` unless one exists."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    schedule = schedule_or_exit(args)
    is_git = args.source.endswith(".git") or args.source.startswith(("git@", "git://"))
    source = args.source if is_git else str(Path(args.source).resolve())
    ensure_pool(args.pool)
    # The flow's working directory is the checkout (or the fresh clone): repo "." is it.
    common = {"work_pool_name": args.pool, "build": False, "push": False}
    genbench.from_source(source, "pipelines/flows.py:genbench").deploy(
        name=args.name,
        schedule=schedule,
        parameters={"repo": ".", "pull": args.pull, "push": args.push},
        concurrency_limit=1,  # a nightly run still going when the next is due waits for it
        print_next_steps=False,
        **common,
    )
    sweep.from_source(source, "pipelines/flows.py:sweep").deploy(
        name=f"{args.name}-sweep", parameters={"repo": "."}, print_next_steps=False, **common
    )
    print(
        f"deployed genbench/{args.name} ({args.cron}) and sweep/{args.name}-sweep to pool "
        f"{args.pool!r}; start a worker: prefect worker start --pool {args.pool}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
