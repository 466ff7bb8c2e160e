"""The `genbench` command: `genbench validate`, `genbench sample`."""

import argparse
import math
from pathlib import Path

from genbench.config.all import validate_params
from genbench.config.base import validate_value
from genbench.device import resolve_device
from genbench.errors import GenbenchError, run_stage
from genbench.imaging import save_grid
from genbench.model_dir import load_model, sample_images


def _validate(args: argparse.Namespace) -> None:
    params = validate_params(args.params)
    print(f"{args.params}: ok ({', '.join(params)})")


def _sample(args: argparse.Namespace) -> None:
    if args.n < 1:
        raise GenbenchError(f"--n = {args.n}: must be at least 1")
    model = load_model(args.model, resolve_device(args.device))
    family, params, config = model.family, model.params, model.config
    overrides = {
        k: v
        for k, v in (("sampler", args.sampler), ("sample_steps", args.steps), ("eta", args.eta))
        if v is not None
    }
    if overrides and family.sampler_card(params) is None:
        raise GenbenchError(
            f"--sampler/--steps/--eta apply to families with a choice of sampler (ddpm), "
            f"not {family.name}"
        )
    if overrides:
        params = validate_value(
            "--sampler/--steps/--eta",
            family.name,
            {**params.model_dump(), **overrides},
            family.params,
        )
    seed = config["seed"] if args.seed is None else args.seed
    images = sample_images(family, model.net, params, args.n, seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_grid(images, args.out, nrow=math.ceil(math.sqrt(args.n)))
    print(f"sample: {args.n} images from {args.model} (seed {seed}) -> {args.out}")


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
    sample = commands.add_parser("sample", help="draw a grid of images from a trained model")
    sample.add_argument("--model", required=True, help="trained model folder, e.g. models/gan")
    sample.add_argument("--n", type=int, default=64, help="number of images (default: %(default)s)")
    sample.add_argument("--out", required=True, help="PNG file to write")
    sample.add_argument(
        "--seed", type=int, default=None, help="noise seed (default: the run's seed)"
    )
    sample.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N (default: %(default)s)"
    )
    sample.add_argument(
        "--sampler", choices=("ddim", "ancestral"), help="ddpm: override the sampler"
    )
    sample.add_argument("--steps", type=int, help="ddpm: DDIM steps (default: ddpm.sample_steps)")
    sample.add_argument("--eta", type=float, help="ddpm: DDIM eta (default: ddpm.eta)")
    sample.set_defaults(func=_sample)
    return parser


def main() -> None:
    """Entry point of the `genbench` console script."""
    args = build_parser().parse_args()
    run_stage(lambda: args.func(args))
