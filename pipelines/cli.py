"""What the command-line entry points share: a Prefect API that answers, the flow's final state
read into an exit code, the deployment options."""

import argparse
import contextlib
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prefect.schedules import Cron

from genbench.core.errors import GenbenchError
from genbench.core.system import health_problem

# What to do when no Prefect server answers, in every error that says so.
START_SERVER = (
    "run `prefect server start` in another terminal and "
    "`export PREFECT_API_URL=http://127.0.0.1:4200/api`"
)
# Seconds for Prefect's temporary server to start (its default, 20, is too short on a busy
# machine: issue 17); PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS overrides it.
EPHEMERAL_STARTUP_SECONDS = 180


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
        return f"PREFECT_API_URL is not set; {START_SERVER} (docs/orchestration.md)"
    reason = health_problem(url, timeout=5)
    return reason and f"Prefect server {url} is unreachable ({reason}); start it: {START_SERVER}"


@dataclass
class ServerStart:
    """Prefect's temporary server, being started in a thread (start_prefect_api)."""

    thread: threading.Thread | None = None
    error: str | None = None  # the `error: ...` line when it did not start


def start_prefect_api() -> ServerStart:
    """Start Prefect's temporary server now, in a thread, when PREFECT_API_URL is unset: the
    caller's imports and checks run meanwhile (the server takes seconds, on the other core), and
    prefect_api(started) waits for it. Not a daemon: a caller that exits first (a bad value) waits
    for the start, so Prefect's exit hook stops the server rather than leave it running."""
    from prefect.settings import get_current_settings

    started = ServerStart()
    if not get_current_settings().api.url:
        started.thread = threading.Thread(
            target=_start_in_thread, args=(started,), name="prefect-server-start"
        )
        started.thread.start()
    return started


def _start_in_thread(started: ServerStart) -> None:
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as STARTUP
    from prefect.settings import temporary_settings

    with temporary_settings(set_defaults={STARTUP: EPHEMERAL_STARTUP_SECONDS}):
        started.error = _start_temporary_server(STARTUP.value())


@contextlib.contextmanager
def prefect_api(started: ServerStart | None = None) -> Iterator[None]:
    """Around a flow run from the command line: a Prefect API that answers, else exit 1.

    With PREFECT_API_URL, that server must answer. Without it, Prefect starts a temporary
    server (here, or already in a thread: `started`), which creates its database on first start:
    longer than Prefect's default 20 s on a slow or busy machine, so it gets
    EPHEMERAL_STARTUP_SECONDS unless the user set the timeout. Started here, before the flow, a
    server that does not come up is one line and nothing runs.
    """
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as STARTUP
    from prefect.settings import get_current_settings, temporary_settings

    if get_current_settings().api.url:
        problem = server_problem()
        if problem:
            sys.exit(f"error: {problem}")  # printed to stderr, exit code 1
        yield
        return
    # set_defaults: a value the user set (environment or Prefect profile) still wins
    with temporary_settings(set_defaults={STARTUP: EPHEMERAL_STARTUP_SECONDS}):
        if started is not None and started.thread is not None:
            started.thread.join()
            error = started.error
        else:
            error = _start_temporary_server(STARTUP.value())
        if error:
            sys.exit(error)  # printed to stderr, exit code 1
        yield


def _start_temporary_server(seconds: int) -> str | None:
    """Start Prefect's temporary server now (the flow's client reuses it); the error line when
    it does not start."""
    import httpx
    from prefect import get_client

    print(
        f"starting a temporary Prefect server (first start creates its database: up to ~{seconds}"
        " s); set PREFECT_API_URL to use a running one",
        file=sys.stderr,
    )
    try:
        with get_client(sync_client=True):
            return None
    except (RuntimeError, ValueError, OSError, httpx.HTTPError) as err:
        reason = str(err).strip().partition("\n")[0].rstrip(".") or type(err).__name__
    return (
        f"error: Prefect's temporary server did not start ({reason}; timeout {seconds} s); "
        + START_SERVER
    )


def add_deployment_args(parser: argparse.ArgumentParser, name: str) -> None:
    """The options `serve` and `deploy` share: schedule, deployment name, DVC remote use."""
    parser.add_argument("--cron", default="0 3 * * *", help="schedule (default: %(default)s)")
    parser.add_argument("--timezone", default="UTC", help="of the schedule (default: UTC)")
    parser.add_argument("--name", default=name, help="deployment name (default: %(default)s)")
    add_remote_args(parser)


def add_remote_args(parser: argparse.ArgumentParser) -> None:
    """--pull and --push: the flow's use of a DVC remote."""
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
