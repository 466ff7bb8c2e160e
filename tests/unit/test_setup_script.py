"""scripts/setup_venv.sh: the installer it bootstraps is pinned, and a bad choice of installer
stops before anything is created (the installs themselves are measured in docs/benchmarks.md)."""

import os
import re
import shutil
import subprocess
import sys

from tests.conftest import ROOT


def test_the_lock_pins_the_uv_that_setup_installs():
    lock = re.findall(r"^uv==(\S+)$", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    wanted = re.findall(r"^uv==(\S+)$", (ROOT / "requirements.in").read_text(), re.MULTILINE)
    assert len(lock) == 1 and lock == wanted, (lock, wanted)
    assert "grep -E '^uv==' requirements.lock" in (ROOT / "scripts/setup_venv.sh").read_text()


def test_an_unknown_installer_stops_before_the_venv_is_made(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/setup_venv.sh", tmp_path / "scripts")
    for name in ("requirements.lock", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path)
    env = {**os.environ, "GENBENCH_INSTALLER": "conda", "PYTHON": sys.executable}
    found = subprocess.run(
        ["bash", str(tmp_path / "scripts/setup_venv.sh")], env=env, capture_output=True, text=True
    )
    assert found.returncode == 2
    assert found.stderr == "error: GENBENCH_INSTALLER = 'conda': use uv (the default) or pip\n"
    assert not (tmp_path / ".venv").exists()
