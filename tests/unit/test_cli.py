"""The `genbench` command's light paths: help, version and validate never import torch."""

import subprocess
import sys
import textwrap

import pytest

import genbench
from tests.conftest import ROOT

RUN_CLI = textwrap.dedent(
    """
    import sys
    from genbench import cli
    sys.argv = ["genbench", *sys.argv[1:]]
    try:
        cli.main()
    except SystemExit as stop:
        print("exit", stop.code)
    heavy = [m for m in ("torch", "diffusers", "mlflow", "torch_fidelity") if m in sys.modules]
    print("heavy", ",".join(heavy) or "none")
    """
)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["validate", "--params", "params.yaml"],
        ["sample", "--bogus"],
        ["diff", "HEAD"],
    ],
)
def test_light_commands_import_no_torch(args):
    found = subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip().splitlines()[-1] == "heavy none", found.stdout + found.stderr
    if args == ["--version"]:
        assert f"genbench {genbench.__version__}" in found.stdout
    if args[0] == "validate":
        assert "params.yaml: ok" in found.stdout


def test_version_is_the_packages():
    from importlib.metadata import version

    assert genbench.__version__ == version("genbench")
