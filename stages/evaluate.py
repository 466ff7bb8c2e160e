"""DVC stages `evaluate@<name>` and `evaluate_real`: FID/KID/IS/PRC, SSIM and cost of one model's
samples (or of real train images: the floor) against the test split, with a protocol card.
"""

import argparse
from pathlib import Path

from genbench.core.errors import run_stage
from genbench.evaluation.run import Paths, run_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, help="prepared data folder")
    parser.add_argument("--model", help="trained model folder; leave out for the real-data floor")
    parser.add_argument("--evaluator", required=True, help="folder of the trained evaluator")
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.add_argument("--card", required=True, help="protocol card JSON to write")
    parser.add_argument("--cache", required=True, help="torch-fidelity feature cache folder")
    parser.add_argument("--figures", required=True, help="folder for the report's sample grids")
    args = parser.parse_args()
    folders = (args.data, args.evaluator, args.out, args.card, args.cache, args.figures)
    paths = Paths(*map(Path, folders), model=Path(args.model) if args.model else None)
    extractor, fid = run_evaluation(args.params, paths)
    print(f"evaluate: FID ({extractor}) {fid:.3f} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
