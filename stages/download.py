"""DVC stage `download`: fetch data.source's files (checksum-verified) into a raw folder."""

import argparse

from genbench.config.base import load_params
from genbench.config.data import DataParams
from genbench.core.errors import run_stage
from genbench.data.download import download


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    parser.add_argument("--out", required=True, help="raw folder to write")
    args = parser.parse_args()
    params = load_params(args.params, data=DataParams)
    out = download(params["data"], args.out)
    print(f"download: {params['data'].source} -> {out}")


if __name__ == "__main__":
    run_stage(main)
