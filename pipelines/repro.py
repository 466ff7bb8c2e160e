"""Running DVC's own commands (`dvc repro --single-item`, `dvc exp run`) and telling their outcome.

No prefect here: each function takes an `on_line` callable for the live output, so the flows
route it into Prefect's task log and the tests can call these directly.
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from genbench.core.errors import GenbenchError

TAIL_LINES = 3  # error lines quoted in a failed stage's one-line message
# The venv's bin folder first, so `dvc` and the stages' `python` are this interpreter's, also
# under a Prefect worker started without the venv activated.
BIN = str(Path(sys.executable).parent)
# Another flow run (a scheduled one beside a manual one) or `make run` in the same workspace
# holds DVC's lock for one stage at a time: wait for it rather than fail.
DVC = [sys.executable, "-m", "dvc", "--wait-for-lock"]


class StageError(GenbenchError):
    """A DVC command exited non-zero; the message ends with the tail of its output."""


class Outcome(StrEnum):
    """What `dvc repro --single-item` did with one stage (outcome_of reads it from its output)."""

    RAN = "ran"
    UP_TO_DATE = "up to date"  # its code, data and params are those in dvc.lock
    RESTORED = "restored from the run cache"  # outputs checked out, the command not run


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    output: str  # the whole output, stdout and stderr interleaved


def dvc_env(
    pipeline_id: str | None = None, tracking_uri: str | None = None, flow_run_url: str | None = None
) -> dict[str, str]:
    """The environment of a DVC command: venv first, no analytics, optional MLflow grouping and
    the flow run's URL (a tag on every MLflow run the stages log)."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if pipeline_id:
        env["GENBENCH_PIPELINE_ID"] = pipeline_id
    if flow_run_url:
        env["GENBENCH_FLOW_RUN_URL"] = flow_run_url
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def absolute_tracking_uri(root: str | Path) -> str:
    """MLFLOW_TRACKING_URI with a relative sqlite path made absolute against the repo.

    `dvc exp run --temp` runs in a temporary copy: a relative `sqlite:///mlflow.db` would
    log there and vanish with it.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str(Path(root) / uri[len(prefix) :])
    return uri


def stream(
    cmd: list[str], cwd: str | Path, env: dict[str, str], on_line: Callable[[str], None]
) -> CommandResult:
    """Run cmd, passing each output line to on_line as it comes (tqdm's \\r updates included)."""
    lines: list[str] = []
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,  # universal newlines: a progress bar's \r ends a line too
        errors="replace",
    ) as proc:
        try:
            for raw in proc.stdout:  # type: ignore[union-attr]  (PIPE was asked for)
                line = raw.rstrip()
                if line:
                    lines.append(line)
                    on_line(line)
        except BaseException:  # cancelled or crashed: no orphan dvc left holding the lock
            proc.kill()
            raise
        returncode = proc.wait()
    return CommandResult(returncode, "\n".join(lines))


def tail(output: str, count: int = TAIL_LINES) -> str:
    """The last error lines of a failed command, joined into one line.

    The stage's own `error: ...` lines first; DVC's 'failed to reproduce' (which repeats the
    whole command) only when the stage said nothing; else the last lines whatever they say.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    own = [line for line in errors if not line.startswith("ERROR: failed to reproduce")]
    chosen = (own or errors or lines)[-count:]
    return " | ".join(chosen) if chosen else "no output"


def repro_command(stage: str, pull: bool = False) -> list[str]:
    """`dvc repro --single-item <stage>`: the stage alone; the flow has run its upstream first."""
    cmd = [*DVC, "repro", "--single-item", stage]
    return [*cmd, "--pull"] if pull else cmd


# How `dvc repro` says what it did with a stage (DVC's log lines, at a line's start; the stage
# as addressed from the repo root, where the flow runs DVC).
SAID = (
    ("Stage '{}' is cached - skipping run", Outcome.RESTORED),
    ("Stage '{}' didn't change, skipping", Outcome.UP_TO_DATE),
    ("Running stage '{}':", Outcome.RAN),
)


def outcome_of(output: str, stage: str) -> Outcome:
    """What `dvc repro --single-item <stage>` did, read from its own output (DVC's CLI is the
    interface: no DVC internals). A restore that fails falls back to running the command, so
    a "Running stage" line wins over a "cached" one; no line at all (a pulled output): RAN."""
    lines = [line.strip() for line in output.splitlines()]
    found = [
        outcome
        for words, outcome in SAID
        if any(line.startswith(words.format(stage)) for line in lines)
    ]
    if not found or Outcome.RAN in found:
        return Outcome.RAN
    return found[0]


def repro_stage(
    repo: str | Path,
    stage: str,
    env: dict[str, str],
    on_line: Callable[[str], None],
    pull: bool = False,
) -> Outcome:
    """Bring one stage up to date with DVC; StageError with the error's tail if it fails."""
    result = stream(repro_command(stage, pull), repo, env, on_line)
    if result.returncode != 0:
        raise StageError(f"stage {stage!r} failed: {tail(result.output)}")
    return outcome_of(result.output, stage)


def changed_stages(repo: str | Path, env: dict[str, str]) -> set[str]:
    """The stages `dvc status` finds changed now (code, params, deps or outputs differ from
    dvc.lock); their downstream stages are not known to be changed until they have run."""
    result = subprocess.run(
        [*DVC, "status", "--json"], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise StageError(f"dvc status failed: {tail(result.stdout + result.stderr)}")
    return set(json.loads(result.stdout or "{}"))


def run_dvc(
    args: list[str], repo: str | Path, env: dict[str, str], on_line: Callable[[str], None]
) -> str:
    """Any other DVC command (`push`, `exp run`); StageError with its tail if it fails."""
    result = stream([*DVC, *args], repo, env, on_line)
    if result.returncode != 0:
        raise StageError(
            f"dvc {' '.join(args[:2])} failed (exit {result.returncode}): {tail(result.output)}"
        )
    return result.output
