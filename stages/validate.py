"""DVC stage `validate`: every check of `genbench validate` (the whole params file, this machine),
the steps each family's budget buys, and whether a source to download can be, before any other
stage runs.

The download stage depends on this stage's output, and every other stage on download's, so
`dvc repro`, `dvc exp run -S ...`, `make flow` and the sweeps all run it first whenever
params.yaml or the code changes: a bad value stops the pipeline here, before DVC deletes any
stage's outputs. The output never changes (one fixed line), so passing it reruns nothing.
"""

import argparse
from pathlib import Path

from genbench.core.errors import run_stage
from genbench.core.files import write_json
from genbench.validation import check_all

PASSED = {"passed": "the checks of stages/validate.py"}  # the same every time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw", required=True, help="the raw data folder download fills")
    parser.add_argument("--out", required=True, help="file this stage writes when all pass")
    args = parser.parse_args()
    steps = check_all(args.params, args.raw)["steps"]
    write_json(Path(args.out), PASSED)
    budget = ", ".join(f"{name} {n} steps" for name, n in steps.items())
    print(f"validate: {args.params} ok" + (f" (budget: {budget})" if budget else ""))


if __name__ == "__main__":
    run_stage(main)
