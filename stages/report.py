"""DVC stage `report`: the comparison page, reports/index.html (self-contained) and
reports/report.md, from every model's metrics, protocol card, figures and loss curves, with the
change since the previous commit. The report folder is logged to each model's MLflow run,
under report/<pipeline id>.
"""

import argparse
from pathlib import Path

from genbench import tracking
from genbench.errors import run_stage
from genbench.report.inputs import REAL, committed_at, load_inputs
from genbench.report.render import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--names", nargs="+", required=True, help="models to compare")
    parser.add_argument("--metrics", required=True, help="folder of <name>.json and cards")
    parser.add_argument("--models", required=True, help="folder of the trained model folders")
    parser.add_argument("--figures", required=True, help="folder of the evaluation figures")
    parser.add_argument("--data", required=True, help="prepared data folder (for meta.json)")
    parser.add_argument("--out", required=True, help="report folder to write")
    parser.add_argument("--previous-rev", default="HEAD", help="git revision to compare with")
    parser.add_argument("--params", default="params.yaml", help="for the pipeline execution id")
    args = parser.parse_args()
    metrics = Path(args.metrics)
    tracking.check_reachable(tracking.tracking_uri())  # before the work, as in every stage
    previous = committed_at(args.previous_rev, [*args.names, REAL], metrics)
    inputs = load_inputs(
        args.names,
        metrics,
        Path(args.models),
        Path(args.figures),
        Path(args.data),
        previous,
        args.previous_rev,
    )
    page = write_report(inputs, Path(args.out))
    # one folder per pipeline execution, so a sweep's reports do not overwrite each other
    where = f"report/{tracking.pipeline_id(args.params)}"
    logged = tracking.log_report([r.run for r in inputs.models if r.run], Path(args.out), where)
    print(f"report: {page} (logged to {logged} of {len(args.names)} MLflow runs)")


if __name__ == "__main__":
    run_stage(main)
