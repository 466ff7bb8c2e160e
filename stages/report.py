"""DVC stage `report`: the comparison page, reports/index.html (self-contained) and
reports/report.md, rendered from metrics/compare.json and the evaluation figures alone, then
logged to MLflow as the execution's report run. What changed since a commit is
`genbench diff`, outside the graph.
"""

import argparse
from pathlib import Path

from genbench.core.errors import run_stage
from genbench.report.run import ReportPaths, run_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compare", required=True, help="metrics/compare.json")
    parser.add_argument("--figures", required=True, help="folder of the evaluation figures")
    parser.add_argument("--out", required=True, help="report folder to write")
    parser.add_argument("--params", default="params.yaml", help="for the pipeline execution id")
    args = parser.parse_args()
    paths = ReportPaths(Path(args.compare), Path(args.figures), Path(args.out))
    page, logged = run_report(paths, params_file=args.params)
    print(f"report: {page}" + ("" if logged else " (not logged to MLflow)"))


if __name__ == "__main__":
    run_stage(main)
