"""Errors a user can fix, and the wrapper that turns them into one line and an exit code."""

import errno
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
    except OSError as err:
        if err.errno not in FULL_DISK:
            raise
        # Outputs are written to temp files and folders renamed into place: nothing is
        # half-written, and checkpoints already on disk are kept for the rerun.
        where = f" writing {err.filename}" if err.filename else ""
        print(
            f"error: {err.strerror}{where}; free some space and rerun (nothing was half-written)",
            file=sys.stderr,
        )
        sys.exit(1)


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # no space left; disk quota exceeded
