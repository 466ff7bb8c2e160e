"""Processes the integration tests start for real (mlflow, prefect, CPU load): ports, start,
health, stop."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cmd: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    """A background process in its own session, so stop() can end it and its children."""
    with open(log, "w") as out:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process group, SIGKILL when it has not exited within timeout."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Poll `<url>/health` until it answers; fail with the server's log if it exits or stalls."""
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                tail = log.read_text()[-2000:]
                raise RuntimeError(f"{url} did not become healthy: {tail}") from None
            time.sleep(0.5)


@contextlib.contextmanager
def busy_cpus(log_dir: Path, seconds: float = 300) -> Iterator[None]:
    """One busy-looping process per CPU core, as a training job next door would keep them busy.

    Each ends by itself after `seconds`, even if the test dies; all are stopped on exit.
    """
    loop = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    procs = [
        start([sys.executable, "-c", loop], log_dir, dict(os.environ), log_dir / f"busy{i}.log")
        for i in range(os.cpu_count() or 1)
    ]
    try:
        yield
    finally:
        for proc in procs:
            stop(proc)
