"""What genbench asks of the machine around it: git, and whether an HTTP service answers.

Ground floor: used by tracking (commit tags), the report (committed metrics) and pipelines/
(Prefect server checks); imports nothing from genbench.
"""

import subprocess
import urllib.error
import urllib.request
from pathlib import Path


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
