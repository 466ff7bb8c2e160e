"""dvc.yaml lists exactly the source files each stage imports: no needless reruns, none missed."""

import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PROBE = """
import importlib.util, sys, pathlib
root = pathlib.Path(sys.argv[1]).resolve()
spec = importlib.util.spec_from_file_location("stage_under_test", sys.argv[2])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None)
    path = pathlib.Path(path).resolve() if path else None
    if path and any(path.is_relative_to(root / top) for top in ("src", "stages")):
        print(path.relative_to(root))
"""


def imported_source_files(stage_file: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), str(ROOT / stage_file)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return set(out.stdout.split()) | {stage_file}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_code_deps_are_exact(name):
    stage = STAGES[name]
    stage_file = next(d for d in stage["deps"] if d.startswith("stages/"))
    declared = {d for d in stage["deps"] if d.startswith(("src/", "stages/"))}
    assert declared == imported_source_files(stage_file)
