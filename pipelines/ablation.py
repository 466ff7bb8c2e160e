"""`python -m pipelines.ablation [OPTION ...]`: each option of orchestration.ablation against
its family's defaults, on the validation split (docs/ablations.md).

Every option runs as one DVC experiment (`dvc exp run --temp -S ...`, up to `workers` side by
side): the family's trainings over compare.seeds at the same budget, their evaluations, compare.
The baseline is the workspace's own default run (metrics/compare.json), which must be up to
date (`make run` first). compare/ablation.py judges each option against it with the compare
stage's statistics on val FID and KID; the table goes to docs/ablations.md (between its
markers), to stdout, to a Prefect artifact and to an MLflow run `ablation · <execution>`.
"""

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from genbench.compare.ablation import BASELINE, EQUIVALENT, judge_family
from genbench.config.base import read_yaml
from genbench.core.errors import ParamsError
from genbench.tracking import log_ablation
from pipelines import grid
from pipelines.cli import finish, prefect_api
from pipelines.flows import COMPARE_FILE, load_settings, point_name, run_points
from pipelines.repro import StageError, absolute_tracking_uri, changed_stages, dvc_env
from pipelines.workspace import write_files

ABLATION_ARTIFACT = "genbench-ablation"
DOCS = "docs/ablations.md"
START, END = "<!-- ablation:start -->", "<!-- ablation:end -->"


def option_points(
    options: dict[str, list[str]], only: list[str] | None
) -> dict[str, tuple[str, grid.Point]]:
    """{option: (family, point)} for the options named in `only` (default: all); ParamsError
    names an unknown option, a sweep inside an option, or an option touching two families."""
    unknown = [name for name in only or [] if name not in options]
    if unknown:
        known = ", ".join(options) or "none (orchestration.ablation is empty)"
        raise ParamsError(
            f"ablation: no option {unknown[0]!r} in orchestration.ablation; known: {known}"
        )
    found = {}
    for name in only or list(options):
        axes = grid.parse_grid(options[name])
        if any(len(axis.values) != 1 for axis in axes):
            raise ParamsError(f"orchestration.ablation.{name}: one value per key, not a sweep")
        families = {axis.key.split(".", 1)[0] for axis in axes}
        if len(families) != 1:
            raise ParamsError(
                f"orchestration.ablation.{name}: keys of one family's section, "
                f"got {sorted(families)}"
            )
        found[name] = (families.pop(), grid.expand(axes)[0])
    if not found:
        raise ParamsError("ablation: orchestration.ablation is empty; name options there")
    return found


def _defaults(params: dict[str, Any], point: grid.Point) -> bool:
    """True when every key of the point already has that value in `params` (params.yaml)."""
    for key, value, _ in point:
        node: Any = params
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != value:
            return False
    return True


# `dvc status` lists these when params.yaml or the code changed though nothing the comparison
# rests on did: validate (it reads the whole params file, orchestration.ablation included) and
# report (it renders, after compare).
NOT_BASELINE = frozenset({"validate", "report"})


def baseline_of(root: Path) -> dict[str, Any]:
    """The workspace's compare.json, after checking that `dvc status` finds no stage it rests on
    changed (every family's: an experiment would rerun a stale one, whatever its option)."""
    stale = sorted(set(changed_stages(root, dvc_env())) - NOT_BASELINE)
    if stale:
        raise StageError(
            f"ablation: the baseline (the default run) is out of date ({', '.join(stale[:3])}"
            f"{' ...' if len(stale) > 3 else ''}); run `make run` first, then commit dvc.lock"
        )
    path = root / COMPARE_FILE
    if not path.exists():
        raise StageError(f"ablation: {COMPARE_FILE} is missing; run `make run` first")
    return json.loads(path.read_text())


def run_ids(compare: dict[str, Any], family: str) -> list[str]:
    """The MLflow training runs behind a family's numbers, one per seed, in seed order."""
    found = {
        int(name.rsplit("-", 1)[1]): str(run.get("run", {}).get("run_id", "?"))
        for name, run in compare.get("runs", {}).items()
        if name.rsplit("-", 1)[0] == family
    }
    return [found[seed] for seed in sorted(found)]


def _cell(stats: dict, digits: int) -> str:
    half = stats.get("half")
    return f"{stats['mean']:.{digits}f}" + (f" ± {half:.{digits}f}" if half is not None else "")


def _verdict(found: dict | None, key: str) -> str:
    if found is None:
        return "(baseline)"
    item = found[key]
    if item["relation"] == EQUIVALENT:  # shown by TOST: its p, not Welch's
        p, test = item["p_equivalence"], "TOST p"
    else:
        p, test = item["p_holm"], "p"
    return item["relation"] + (f" ({test} {p:.2g})" if p is not None else "")


def table(results: dict[str, dict], runs: dict[str, dict], names: dict[str, str]) -> str:
    """The Markdown table: per family the baseline, then each option, with val FID and KID
    (mean ± t half-width over seeds), the verdict against the baseline (Holm-adjusted: Welch's
    p, or TOST's for "equivalent"), the cost (steps at the budget, training seconds), the DVC
    experiment and the MLflow training runs (the first 8 characters of each id; the ablation's
    own MLflow run lists them whole, in ablation.json)."""
    lines = [
        "| family | option | val FID | vs baseline | val KID | vs baseline | steps | train s "
        "| winner | DVC experiment | MLflow training runs |",
        "|" + " --- |" * 11,
    ]
    for family, result in results.items():
        for option, compare in runs[family].items():
            stats = compare["families"][family]
            found = None if option == BASELINE else result["options"][option]
            cost = stats["cost"]
            lines.append(
                f"| {family} | {option} | {_cell(stats['val']['fid'], 2)} "
                f"| {_verdict(found, 'fid')} | {_cell(stats['val']['kid_mean'], 3)} "
                f"| {_verdict(found, 'kid')} | {cost['train_steps']['mean']:.0f} "
                f"| {cost['train_seconds']['mean']:.0f} "
                f"| {'yes' if found and found['winner'] else '-' if found else ''} "
                f"| {names.get(f'{family}/{option}', '-')} "
                f"| {', '.join(r[:8] for r in run_ids(compare, family)) or '-'} |"
            )
    return "\n".join(lines)


def write_docs(path: Path, text: str) -> None:
    """Replace what lies between the markers of docs/ablations.md (appended when missing)."""
    old = path.read_text() if path.exists() else ""
    block = f"{START}\n{text}\n{END}"
    if START in old and END in old:
        new = old[: old.index(START)] + block + old[old.index(END) + len(END) :]
    else:
        new = old + ("\n" if old else "") + block + "\n"
    write_files(path.parent, {path.name: new.encode()})


@flow(name="ablation")
def ablation(repo: str = ".", only: list[str] | None = None, docs: bool = True) -> dict:
    """Each option (default: all of orchestration.ablation) against its family's defaults.

    Args:
        only: option names (default: every option); one equal to the defaults is left out.
        docs: write the table into docs/ablations.md.
    """
    root = Path(repo).resolve()
    settings = load_settings(root)
    logger = get_run_logger()
    chosen = option_points(settings.ablation, only)
    params = read_yaml(root / "params.yaml")
    skipped = [name for name, (_, point) in chosen.items() if _defaults(params, point)]
    chosen = {name: found for name, found in chosen.items() if name not in skipped}
    if skipped:
        logger.info("left out, already the defaults: %s", ", ".join(skipped))
    if not chosen:
        raise ParamsError("ablation: every option chosen is already the default; nothing to run")
    grid.check_points(root / "params.yaml", [point for _, point in chosen.values()])
    baseline = baseline_of(root)
    # `<flow run name>-<option>`: every run of the flow names its own experiments
    named = [(point_name(name.replace("_", "-")), p) for name, (_, p) in chosen.items()]
    states = run_points(root, settings, named)
    failed = [name for name, state in zip(chosen, states, strict=True) if not state.is_completed()]
    if failed:
        raise StageError(f"ablation: {len(failed)} of {len(chosen)} options failed: {failed[0]}")
    runs: dict[str, dict[str, dict]] = {}
    names: dict[str, str] = {}
    for (name, (family, _)), (experiment, _), state in zip(
        chosen.items(), named, states, strict=True
    ):
        runs.setdefault(family, {BASELINE: baseline})[name] = state.result()[f"{COMPARE_FILE}:"]
        names[f"{family}/{name}"] = experiment
    confidence = baseline.get("confidence", 0.95)
    margin = baseline.get("equivalence_margin", 0.1)
    results = {
        family: judge_family(
            baseline, {k: v for k, v in found.items() if k != BASELINE}, family, confidence, margin
        )
        for family, found in runs.items()
    }
    text = table(results, runs, names)
    logger.info("ablation (validation split):\n%s", text)
    create_markdown_artifact(
        text, key=ABLATION_ARTIFACT, description="Each option against its family's defaults (val)"
    )
    if docs:
        write_docs(root / DOCS, text)
    winners = sorted(n for r in results.values() for n, f in r["options"].items() if f["winner"])
    training_runs = {
        f"{family}/{option}": run_ids(compare, family)
        for family, found in runs.items()
        for option, compare in found.items()
    }
    means = {
        f"{family}.{option}.val_{leaf}": compare["families"][family]["val"][leaf]["mean"]
        for family, found in runs.items()
        for option, compare in found.items()
        for leaf in ("fid", "kid_mean")
    }
    found = {"results": results, "experiments": names, "training_runs": training_runs}
    with tracking_env(absolute_tracking_uri(root)):  # the project's store, wherever run from
        log_ablation(root / "params.yaml", text, found, means)
    return {"table": text, "winners": winners, "skipped": skipped}


@contextlib.contextmanager
def tracking_env(uri: str) -> Iterator[None]:
    """MLFLOW_TRACKING_URI set to uri inside the block, as it was after."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.ablation", description=__doc__)
    parser.add_argument("options", nargs="*", help="option names (default: all of them)")
    parser.add_argument("--repo", default=".", help="the DVC project (default: %(default)s)")
    parser.add_argument(
        "--no-docs", action="store_true", help=f"leave {DOCS} as it is (print the table only)"
    )
    args = parser.parse_args(argv)
    with prefect_api():
        state = ablation(
            repo=args.repo, only=args.options or None, docs=not args.no_docs, return_state=True
        )
    return finish(state, describe)


def describe(found: dict) -> list[str]:
    """The table, then what won (separated from its baseline on val FID, not worse on KID)."""
    winners = ", ".join(found["winners"]) or "none"
    return [found["table"], f"winners on the validation split: {winners}"]


if __name__ == "__main__":
    sys.exit(main())
