"""DVC stage `train_evaluator`: the offline feature extractor, a CNN on the train labels."""

import argparse
from pathlib import Path

from genbench.config.base import Seed, load_params
from genbench.config.evaluate import EvaluateParams
from genbench.core.errors import run_stage
from genbench.evaluation.evaluator_dir import fit_and_write_evaluator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, help="prepared data folder")
    parser.add_argument("--out", required=True, help="evaluator folder to write")
    args = parser.parse_args()
    params = load_params(args.params, seed=Seed, evaluate=EvaluateParams)
    info = fit_and_write_evaluator(Path(args.out), args.data, params["evaluate"], params["seed"])
    print(f"train_evaluator: test accuracy {info.get('test_accuracy', 'n/a')} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
