"""dvc.yaml's code deps cover what each stage imports: no edit is missed, and the list stays short.

A dep is a stage file, a module file, or a package folder. Every source file a stage imports lies
under a declared dep; every declared dep holds at least one module the stage imports (no dead
dep); a stage lists at most MAX_CODE_DEPS of them. A folder may hold modules the stage does not
run (editing those reruns it needlessly): that is the price of short deps, kept small by putting
the ground floor in src/genbench/core and each family's code in its own folder.
"""

import json
import subprocess
import sys

import pytest
import yaml
from dvc.repo import Repo

from tests.conftest import ROOT

# Stages that load one family by name at run time (genbench.families.load_family(key)).
FAMILY_STAGES = {"train", "evaluate"}
# Stages that load every family (validate counts each one's FLOPs per step).
ALL_FAMILY_STAGES = {"validate"}
# The third-party libraries the stages import (none imports genbench). The probe imports them
# once, then runs each stage in a forked child: a fresh interpreter as far as the project's own
# modules go, without paying torch's import once per stage.
PRELOAD = (
    "numpy", "yaml", "pydantic", "PIL", "jinja2", "matplotlib", "scipy", "sklearn", "torch",
    "torchvision", "torchmetrics", "torch_fidelity", "prdc", "diffusers", "mlflow", "tqdm",
    "safetensors",
)  # fmt: skip
PROBE = """
import importlib, importlib.util, json, os, pathlib, sys, traceback
root = pathlib.Path(sys.argv[1]).resolve()

def project_files():
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        path = pathlib.Path(path).resolve() if path else None
        if path and any(path.is_relative_to(root / top) for top in ("src", "stages")):
            found.add(str(path.relative_to(root)))
    return found

def run_stage(stage_file, family):
    spec = importlib.util.spec_from_file_location("stage_under_test", root / stage_file)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    if family:
        from genbench.families import NAMES, load_family
        for name in NAMES if family == "*" else [family]:
            load_family(name)
    return sorted(project_files())

for name in json.loads(sys.argv[2]):
    if importlib.util.find_spec(name):
        importlib.import_module(name)
assert not project_files(), project_files()  # so each child's findings are its stage's own
found = {}
for stage_file, family in json.loads(sys.argv[3]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            answer, code = json.dumps(run_stage(stage_file, family)), 0
        except BaseException:
            answer, code = json.dumps(traceback.format_exc()), 1
        with os.fdopen(write, "w") as out:
            out.write(answer)
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{stage_file} {family}: " + json.loads(text or '"no answer"'))
    found[f"{stage_file} {family}"] = json.loads(text)
print(json.dumps(found))
"""


def resolved_stages() -> dict[str, list[str]]:
    """Stage address (e.g. train@gan) -> its deps, as DVC itself expands dvc.yaml."""
    with Repo(str(ROOT)) as repo:
        return {s.addressing: [str(d.def_path) for d in s.deps] for s in repo.index.stages}


STAGES = resolved_stages()


def code_deps(deps: list[str]) -> list[str]:
    return [d for d in deps if d.startswith(("src/", "stages/"))]


def modules_under(dep: str) -> set[str]:
    """The Python files a dep stands for: itself, or every .py below a folder."""
    path = ROOT / dep
    if path.is_dir():
        return {str(p.relative_to(ROOT)) for p in path.rglob("*.py")}
    return {dep}


def one_per_family(names) -> list[str]:
    """Stage names with one seed per family: every seed's stage imports the same code."""
    seen, kept = set(), []
    for name in sorted(names):
        base, _, key = name.partition("@")
        if (base, key.rsplit("-", 1)[0]) not in seen:
            seen.add((base, key.rsplit("-", 1)[0]))
            kept.append(name)
    return kept


def stage_file_and_family(name: str) -> tuple[str, str]:
    """The stage file a stage runs, and the family it loads ('' for none, '*' for all)."""
    stage_file = next(d for d in code_deps(STAGES[name]) if d.startswith("stages/"))
    base, _, key = name.partition("@")
    family = key.rsplit("-", 1)[0]  # train@gan-0: family gan, seed 0
    if base in ALL_FAMILY_STAGES:
        return stage_file, "*"
    return stage_file, family if base in FAMILY_STAGES else ""


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    """Every probed stage's project imports (its stage file included): one probe process,
    a forked child per stage."""
    names = one_per_family(STAGES)
    probes = sorted({stage_file_and_family(name) for name in names})
    cmd = [sys.executable, "-c", PROBE, str(ROOT), json.dumps(PRELOAD), json.dumps(probes)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.splitlines()[-1])
    return {
        name: {*found[" ".join(stage_file_and_family(name))], stage_file_and_family(name)[0]}
        for name in names
    }


MAX_CODE_DEPS = 10


@pytest.mark.parametrize("name", one_per_family(STAGES))
def test_code_deps_cover_what_the_stage_imports(name, imports):
    deps = code_deps(STAGES[name])
    imported = imports[name]
    uncovered = {f for f in imported if not any(f in modules_under(d) for d in deps)}
    assert not uncovered, f"{name} imports files no dep covers: {sorted(uncovered)}"
    for dep in deps:
        assert modules_under(dep) & imported, f"{name}: dep {dep} holds nothing the stage imports"
    assert len(deps) <= MAX_CODE_DEPS, f"{name}: {len(deps)} code deps; at most {MAX_CODE_DEPS}"
    assert len(deps) == len(set(deps)), f"{name}: a code dep is listed twice"


def test_one_familys_code_is_a_dep_of_its_own_stages_only():
    """Editing families/ddpm reruns train@ddpm-<seed> and evaluate@ddpm-<seed> for every seed
    (then compare and the report), nothing else."""
    seeds = yaml.safe_load((ROOT / "params.yaml").read_text())["compare"]["seeds"]
    for family in ("gan", "vae", "ddpm"):
        folder = f"src/genbench/families/{family}"
        having = sorted(n for n, deps in STAGES.items() if folder in deps)
        assert having == sorted(f"{s}@{family}-{x}" for s in ("evaluate", "train") for x in seeds)


def test_evaluator_floor_and_report_do_not_depend_on_training_or_data_code():
    def touches(name: str, package: str) -> bool:
        return any(d.startswith(package) for d in code_deps(STAGES[name]))

    for name in ("train_evaluator", "evaluate_real", "compare", "report"):
        assert not touches(name, "src/genbench/training"), name
        for family in ("gan", "vae", "ddpm"):  # the registry and the Family type are fine
            assert not touches(name, f"src/genbench/families/{family}"), name
    assert not touches("report", "src/genbench/data")


def test_report_templates_are_a_dep_of_the_report_only():
    """Editing a template reruns `report`, and nothing else."""
    templates = ROOT / "src/genbench/report/templates/report.html.j2"
    assert templates.exists()
    having = [
        name
        for name, deps in STAGES.items()
        if any(templates.is_relative_to(ROOT / d) for d in code_deps(deps))
    ]
    assert having == ["report"]
    non_python = [d for deps in STAGES.values() for d in code_deps(deps)]
    non_python = [d for d in non_python if not d.endswith(".py") and not (ROOT / d).is_dir()]
    assert non_python == []  # every code dep is a module or a package folder
