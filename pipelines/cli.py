"""What the command-line entry points share: reading a flow's final state into an exit code."""

import argparse
import sys
import urllib.request
from typing import Any

from prefect.schedules import Cron

from genbench.errors import GenbenchError


def finish(state: Any, describe) -> int:
    """Print the flow's outcome (one `error: ...` line when it failed); return the exit code.

    `describe` turns the flow's return value into lines for stdout.
    """
    run_id = state.state_details.flow_run_id
    if state.is_completed():
        for line in describe(state.result()):
            print(line)
        print(f"flow run {run_id}: {state.name}")
        return 0
    error = state.result(raise_on_failure=False)
    message = str(error) if isinstance(error, BaseException) else state.message
    print(f"error: {message} (flow run {run_id})", file=sys.stderr)
    return error.exit_code if isinstance(error, GenbenchError) else 1


def server_problem() -> str | None:
    """Why serving or deploying cannot work now (no PREFECT_API_URL, no answer), or None."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return (
            "PREFECT_API_URL is not set; run `prefect server start` and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` (docs/orchestration.md)"
        )
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=5):
            return None
    except OSError as err:
        reason = getattr(err, "reason", err)
        return f"Prefect server {url} is unreachable ({reason}); start `prefect server start`"


def add_deployment_args(parser: argparse.ArgumentParser, name: str) -> None:
    """The options `serve` and `deploy` share: schedule, deployment name, DVC remote use."""
    parser.add_argument("--cron", default="0 3 * * *", help="schedule (default: %(default)s)")
    parser.add_argument("--timezone", default="UTC", help="of the schedule (default: UTC)")
    parser.add_argument("--name", default=name, help="deployment name (default: %(default)s)")
    parser.add_argument("--pull", action="store_true", help="dvc repro --pull (a DVC remote)")
    parser.add_argument("--push", action="store_true", help="dvc push when every stage passed")


def schedule_or_exit(args: argparse.Namespace) -> Cron:
    """The --cron schedule once the server answers; else one `error:` line and exit code 2."""
    problem = server_problem()
    try:
        if problem:
            raise ValueError(problem)
        return Cron(args.cron, timezone=args.timezone)
    except ValueError as err:
        where = "" if problem else f"--cron {args.cron!r}: "
        print(f"error: {where}{err}", file=sys.stderr)
        sys.exit(2)
