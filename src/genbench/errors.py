"""Errors a user can fix, and the wrapper that turns them into one line and an exit code."""

import sys
from collections.abc import Callable


class GenbenchError(Exception):
    """An error caused by input the user controls; printed as one line, never as a traceback."""

    exit_code = 1


class ParamsError(GenbenchError):
    """A params.yaml value is missing, unknown, of the wrong type or out of range."""

    exit_code = 2


class DataError(GenbenchError):
    """A dataset cannot be fetched, read or trusted (checksum, format, too many bad files)."""


def run_stage(main: Callable[[], None]) -> None:
    """Run an entry point; a GenbenchError becomes one `error: ...` line and its exit code."""
    try:
        main()
    except GenbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
