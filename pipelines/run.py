"""`python -m pipelines.run`: the genbench flow once, now (ephemeral Prefect without a server).

Without PREFECT_API_URL Prefect starts a temporary server for the run (about 12 s; its first
start creates its database, which may take minutes on a busy machine); with it, the run shows
in that server's UI.

`--until-decided --max-seeds N`: seeds on demand (pipelines/decide.py). After each run, while
some pair of families is neither separated nor equivalent and about N or fewer seeds per family
would separate it, add the seeds to params.yaml's compare.seeds and run again: DVC reruns only
the new seeds' stages, compare and the report. At most --max-looks runs, each tested at
(1 - confidence) / looks.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

import yaml

from genbench.core.errors import GenbenchError
from pipelines.cli import add_remote_args, finish, prefect_api, start_prefect_api
from pipelines.decide import DEFAULT_LOOKS, more_seeds, set_keys, undecided, yaml_list


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines.run", description=__doc__)
    parser.add_argument("--repo", default=".", help="the DVC project (default: %(default)s)")
    parser.add_argument(
        "--targets", nargs="+", metavar="STAGE", help="these stages and their upstream only"
    )
    parser.add_argument(
        "--until-decided", action="store_true", help="add seeds while more would decide a pair"
    )
    parser.add_argument("--max-seeds", type=int, default=8, help="seeds per family at most")
    parser.add_argument(
        "--max-looks", type=int, default=DEFAULT_LOOKS, help="runs at most (default: %(default)s)"
    )
    add_remote_args(parser)
    return parser


def run_once(args: argparse.Namespace) -> int:
    # Prefect's temporary server starts (a subprocess) while this process imports the flow and
    # runs the validate stage's checks (the flow's first task repeats them, with the
    # download's): a bad value is one line, and no task runs or retries.
    started = start_prefect_api()
    from genbench.validation import check_all  # imported here: ~2 s, beside the server's start
    from pipelines.flows import genbench

    with contextlib.chdir(args.repo):
        check_all("params.yaml")
    with prefect_api(started):
        state = genbench(
            repo=args.repo, targets=args.targets, pull=args.pull, push=args.push, return_state=True
        )
    return finish(state, lambda summary: [f"{name}: {how}" for name, how in summary.items()])


def until_decided(args: argparse.Namespace) -> int:
    """Run, look at compare.json, add seeds, run again: at most --max-looks runs."""
    from pipelines.summary import COMPARE_FILE  # imported here: MLflow, ~1 s

    root = Path(args.repo)
    params = root / "params.yaml"
    loaded = yaml.safe_load(params.read_text())
    seeds = list((loaded.get("compare") or {}).get("seeds") or [])
    if not 2 <= args.max_looks <= 20 or args.max_seeds <= len(seeds):
        print(
            f"error: --max-looks {args.max_looks} must be 2..20 and --max-seeds "
            f"{args.max_seeds} above the {len(seeds)} seeds of compare.seeds",
            file=sys.stderr,
        )
        return 2
    initial = (loaded.get("verdict") or {}).get("initial_seeds") or seeds
    looks = {"initial_seeds": yaml_list(initial), "sequential_looks": str(args.max_looks)}
    set_keys(params, "verdict", looks)
    for look in range(1, args.max_looks + 1):
        code = run_once(args)
        if code != 0:
            return code
        result = json.loads((root / COMPARE_FILE).read_text())
        added = more_seeds(result, seeds, args.max_seeds)
        pending = undecided(result, args.max_seeds)
        if not added or look == args.max_looks:
            left = f"; still undecided: {', '.join(pending)}" if pending else ""
            print(f"seeds on demand: stopped after {look} look(s) with seeds {seeds}{left}")
            return 0
        seeds += added
        print(f"seeds on demand: look {look}: adding seeds {added} for {', '.join(pending)}")
        set_keys(params, "compare", {"seeds": yaml_list(seeds)})
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return until_decided(args) if args.until_decided else run_once(args)
    except GenbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
