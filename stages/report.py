"""DVC stage `report`: the comparison page, reports/index.html (self-contained) and
reports/report.md, from every model's metrics, protocol card, figures and loss curves, with the
change since the previous commit. The report folder is logged to each model's MLflow run,
under report/<pipeline id>.
"""

import argparse
from pathlib import Path

from genbench.errors import run_stage
from genbench.report.run import ReportPaths, run_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--names", nargs="+", required=True, help="families to compare")
    parser.add_argument("--metrics", required=True, help="folder of compare.json, real.json, runs/")
    parser.add_argument("--models", required=True, help="folder of the trained model folders")
    parser.add_argument("--figures", required=True, help="folder of the evaluation figures")
    parser.add_argument("--data", required=True, help="prepared data folder (for meta.json)")
    parser.add_argument("--out", required=True, help="report folder to write")
    parser.add_argument("--previous-rev", default="HEAD", help="git revision to compare with")
    parser.add_argument("--params", default="params.yaml", help="for the pipeline execution id")
    args = parser.parse_args()
    folders = (args.metrics, args.models, args.figures, args.data, args.out)
    paths = ReportPaths(*map(Path, folders))
    page, logged = run_report(
        args.names, paths, previous_rev=args.previous_rev, params_file=args.params
    )
    print(f"report: {page} (logged to {logged} MLflow runs)")


if __name__ == "__main__":
    run_stage(main)
