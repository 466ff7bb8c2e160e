"""dvc.yaml lists exactly the source files each stage imports: no needless reruns, none missed."""

import subprocess
import sys

import pytest
from dvc.repo import Repo

from tests.conftest import ROOT

# Stages whose entry imports a family module by name at run time (training/families.py).
DYNAMIC = {"train": "genbench.training.{key}", "evaluate": "genbench.training.{key}"}
PROBE = """
import importlib, importlib.util, sys, pathlib
root = pathlib.Path(sys.argv[1]).resolve()
spec = importlib.util.spec_from_file_location("stage_under_test", sys.argv[2])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
for name in sys.argv[3:]:
    importlib.import_module(name)
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None)
    path = pathlib.Path(path).resolve() if path else None
    if path and any(path.is_relative_to(root / top) for top in ("src", "stages")):
        print(path.relative_to(root))
"""


def resolved_stages() -> dict[str, list[str]]:
    """Stage address (e.g. train@gan) -> its deps, as DVC itself expands dvc.yaml."""
    with Repo(str(ROOT)) as repo:
        return {s.addressing: [str(d.def_path) for d in s.deps] for s in repo.index.stages}


STAGES = resolved_stages()


def imported_source_files(stage_file: str, extra_modules: list[str]) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), str(ROOT / stage_file), *extra_modules],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(out.stdout.split()) | {stage_file}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_code_deps_are_exact(name):
    deps = STAGES[name]
    stage_file = next(d for d in deps if d.startswith("stages/"))
    base, _, key = name.partition("@")
    extra = [DYNAMIC[base].format(key=key)] if base in DYNAMIC else []
    declared = {d for d in deps if d.startswith(("src/", "stages/")) and d.endswith(".py")}
    assert declared == imported_source_files(stage_file, extra)


def test_report_templates_are_a_dep_of_the_report_only():
    """Editing a template reruns `report`, and nothing else."""
    templates = "src/genbench/report/templates"
    assert [name for name, deps in STAGES.items() if templates in deps] == ["report"]
    assert (ROOT / templates / "report.html.j2").exists()
    other = [d for deps in STAGES.values() for d in deps if d.startswith("src/") and ".py" not in d]
    assert set(other) == {templates}  # no other non-Python source dep to keep in step
