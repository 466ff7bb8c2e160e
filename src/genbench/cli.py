"""The `genbench` command: `genbench validate [--params params.yaml]`."""

import argparse

from genbench.config.all import validate_params
from genbench.errors import run_stage


def _validate(args: argparse.Namespace) -> None:
    params = validate_params(args.params)
    print(f"{args.params}: ok ({', '.join(params)})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genbench", description="Train and compare image generative models."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check params.yaml before any work runs")
    validate.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    validate.set_defaults(func=_validate)
    return parser


def main() -> None:
    """Entry point of the `genbench` console script."""
    args = build_parser().parse_args()
    run_stage(lambda: args.func(args))
