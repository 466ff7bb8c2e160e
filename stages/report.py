"""DVC stage `report`: the comparison page, reports/index.html (self-contained) and
reports/report.md, from every model's metrics, protocol card, figures and loss curves, with the
change since the previous commit (DVC's `metrics diff`). The report folder is logged to each
model's MLflow run, under report/<pipeline id>.
"""

import argparse
import os
from pathlib import Path

from genbench.core.errors import run_stage
from genbench.report.run import ReportPaths, run_report


def dvc_metrics_diff(rev: str, files: list[Path]) -> dict[Path, dict[str, dict]] | None:
    """`dvc metrics diff <rev>` over `files`, unchanged keys too, keyed by the files given;
    None outside a DVC repository or for an unknown revision."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo
    from dvc.scm import RevError

    paths = [os.path.abspath(file) for file in files]
    try:
        with Repo(os.path.commonpath(paths)) as repo:
            found = repo.metrics.diff(a_rev=rev, targets=paths, all=True).get("diff", {})
            root = repo.root_dir
    except (NotDvcRepoError, RevError):
        return None
    return {
        file: found.get(Path(os.path.relpath(path, root)).as_posix(), {})
        for file, path in zip(files, paths, strict=True)
    }


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
        args.names,
        paths,
        previous_rev=args.previous_rev,
        params_file=args.params,
        metrics_diff=dvc_metrics_diff,
    )
    print(f"report: {page} (logged to {logged} MLflow runs)")


if __name__ == "__main__":
    run_stage(main)
