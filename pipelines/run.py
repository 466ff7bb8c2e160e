"""`python -m pipelines.run`: the genbench flow once, now (ephemeral Prefect without a server).

Without PREFECT_API_URL Prefect starts a temporary server for the run (about 12 s; its first
start creates its database, which may take minutes on a busy machine); with it, the run shows
in that server's UI.
"""

import argparse
import sys

from pipelines.cli import add_remote_args, finish, prefect_api
from pipelines.flows import genbench


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines.run", description=__doc__)
    parser.add_argument("--repo", default=".", help="the DVC project (default: %(default)s)")
    parser.add_argument(
        "--targets", nargs="+", metavar="STAGE", help="these stages and their upstream only"
    )
    add_remote_args(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with prefect_api():
        state = genbench(
            repo=args.repo, targets=args.targets, pull=args.pull, push=args.push, return_state=True
        )
    return finish(state, lambda summary: [f"{name}: {how}" for name, how in summary.items()])


if __name__ == "__main__":
    sys.exit(main())
