"""What genbench asks of the machine around it: git, whether an HTTP service answers, and
whether a tracking store can be written.

Ground floor: used by tracking (commit tags), the report (committed metrics) and pipelines/
(Prefect server checks); imports nothing from genbench.
"""

import contextlib
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# The torch devices a params value may name (params schemas check it; core/device.py resolves it).
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default: a file in the project root


def git(*args: str, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run `git args...` and capture its text output; never raises on a git error (check the
    return code). Raises FileNotFoundError when git itself is missing."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def git_commit(cwd: str | Path | None = None) -> str:
    """HEAD's sha, with `-dirty` when tracked files have changes; `unknown` outside git."""
    try:
        sha = git("rev-parse", "HEAD", cwd=cwd)
        dirty = git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    except OSError:
        return "unknown"
    if sha.returncode or dirty.returncode:
        return "unknown"
    return f"{sha.stdout.strip()}-dirty" if dirty.stdout.strip() else sha.stdout.strip()


def health_problem(url: str, timeout: float = 5.0) -> str | None:
    """Why `<url>/health` does not answer (the reason as text), or None when it does."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout):
            return None
    except (urllib.error.URLError, OSError) as err:
        return str(getattr(err, "reason", err))


def writable(path: Path) -> bool:
    """The process may write `path`, and its mode leaves some write bit set (root ignores
    permissions, so a file chmod-ed read-only counts as read-only for everyone)."""
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def sqlite_problem(uri: str) -> str | None:
    """Why a `sqlite:///path` store cannot be written (sqlite also writes a journal beside the
    file, so its folder must be writable too), or None."""
    path = Path(uri.removeprefix("sqlite:///"))
    if uri in ("sqlite://", "sqlite:///:memory:"):
        return None
    if path.is_dir():
        return f"{path} is a directory, not an sqlite file"
    if path.exists() and not writable(path):
        return f"{path} is read-only"
    if not path.parent.is_dir():
        return f"folder {path.parent} does not exist"
    if not writable(path.parent):
        return f"folder {path.parent} is read-only (sqlite writes a journal beside the file)"
    if path.exists() and path.stat().st_size:
        return _sqlite_damage(path)
    return None


def _sqlite_damage(path: Path) -> str | None:
    """Why an existing sqlite file is not a sound database (header, pages), or None: a
    damaged mlflow.db would otherwise fail the first training with a long traceback."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            found = db.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as err:
        return f"{path} is not a sound sqlite database ({err}); move it aside to start a new one"
    if found and found[0] != "ok":
        return f"{path} is damaged ({found[0]}); move it aside to start a new one"
    return None


def store_problem(uri: str, timeout: float = 5.0) -> str | None:
    """Why the MLflow tracking store at `uri` cannot take runs (one line), or None.

    HTTP(S): the server answers /health. sqlite: the file (and its folder) can be written.
    file:// or a plain path: MLflow 3's file store is refused (maintenance mode).
    """
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("http", "https"):
        reason = health_problem(uri, timeout)
        return None if reason is None else f"the server does not answer ({reason})"
    if scheme in ("", "file") or len(scheme) == 1:  # a path, file://, or a Windows drive
        return "a file store (file:// or a path), which MLflow 3 no longer takes runs in"
    if scheme == "sqlite":
        return sqlite_problem(uri)
    return None
