"""DVC stage `preprocess`: resize and split the raw data into uint8 NCHW arrays + meta.json."""

import argparse

from genbench.config.base import Seed, load_params
from genbench.config.data import DataParams
from genbench.core.errors import run_stage
from genbench.data.preprocess import preprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    parser.add_argument("--raw", required=True, help="raw folder written by `download`")
    parser.add_argument("--out", required=True, help="prepared folder to write")
    args = parser.parse_args()
    params = load_params(args.params, seed=Seed, data=DataParams)
    meta = preprocess(args.raw, args.out, params["data"], params["seed"])
    shape = "×".join(str(d) for d in meta["shape"]["train"][1:])
    print(
        f"preprocess: {meta['counts']['train']} train / {meta['counts']['test']} test images "
        f"of {shape} ({meta['split']} split) -> {args.out}"
    )


if __name__ == "__main__":
    run_stage(main)
