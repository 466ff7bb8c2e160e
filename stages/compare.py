"""DVC stage `compare`: every family's metrics over its seeds (mean, standard deviation, t
interval), every pair of families tested and the ranking per metric, in metrics/compare.json
(with every result it read and the dataset's description: all the report shows),
and each family's verdict metrics (means) in a small file, metrics/summary/<family>.json, DVC's
metrics files (so `dvc metrics show` and `dvc exp show` stay narrow);
the aggregates are logged to MLflow as a run `compare · <execution>`, which lists the runs it
compared in runs.json (tracking.log_comparison).
"""

import argparse
from pathlib import Path

from genbench.compare.run import ComparePaths, log_compare, run_compare, write_summaries
from genbench.config.base import load_params
from genbench.config.compare import CompareParams
from genbench.config.verdict import VerdictParams
from genbench.core.errors import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--names", nargs="+", required=True, help="families to compare")
    parser.add_argument("--runs", required=True, help="folder of <family>-<seed>.json metrics")
    parser.add_argument("--real", required=True, help="the real-data floor's metrics file")
    parser.add_argument("--models", required=True, help="trained models' folder")
    parser.add_argument("--data", required=True, help="prepared data folder (its meta.json)")
    parser.add_argument("--out", required=True, help="compare.json to write")
    parser.add_argument("--curves", help="folder for one curve CSV per family (dvc plots)")
    parser.add_argument("--summary", help="folder for one small metrics file per family")
    args = parser.parse_args()
    params = load_params(args.params, compare=CompareParams, verdict=VerdictParams)
    cfg, wording = params["compare"], params["verdict"]
    folders = (args.runs, args.real, args.models, args.data, args.out)
    paths = ComparePaths(*map(Path, folders), curves=Path(args.curves) if args.curves else None)
    result = run_compare(args.names, cfg, wording, paths)
    if args.summary:
        write_summaries(result, Path(args.summary))
    log_compare(result, Path(args.params), paths.out, paths.runs)
    for metric, found in result["verdicts"].items():
        flag = " (borderline)" if found["borderline"] else ""
        print(f"compare: {metric}: {found['ranking'] or 'no verdict (one seed)'}{flag}")
    for warning in (result["curve"] or {}).get("warnings", []):
        better = warning["better"]
        print(
            f"compare: warning: {warning['family']}'s final {warning['metric']} is significantly "
            f"worse than at {better['fraction']:.0%} of the budget (step {better['step']})"
        )


if __name__ == "__main__":
    run_stage(main)
