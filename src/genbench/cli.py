"""The `genbench` command: `genbench validate`, `genbench sample`, `genbench verify`,
`genbench diff`.

torch and the model code are imported only once `sample`'s (or `verify`'s) arguments are known
to be good, so `--help`, `--version`, `validate` and a mistyped flag cost a fraction of a second,
not the seconds of importing torch (tests/unit/test_cli.py checks that none of them imports it).
"""

import argparse
import math
import re
from pathlib import Path

from genbench import __version__
from genbench.core.errors import GenbenchError, run_stage
from genbench.core.layout import METRICS_DIR, MODELS_DIR
from genbench.core.system import DEVICE_PATTERN
from genbench.preflight import check_environment
from genbench.schema import validate_params

MAX_SAMPLES = 10_000  # `sample --n`: a 100×100 grid
SEED_LIMIT = 2**64  # torch.Generator.manual_seed takes [0, 2**64)
DEVICES = "auto, cpu, cuda, cuda:N, mps"
MODELS = Path(MODELS_DIR)  # where dvc.yaml's train stages write models/<name>/ (from the cwd)


def _validate(args: argparse.Namespace) -> None:
    params = validate_params(args.params)
    check_environment(args.params, params)
    print(f"{args.params}: ok ({', '.join(params)})")


def check_sample_args(args: argparse.Namespace) -> None:
    """Refuse bad `sample` arguments in one line, before any heavy import."""
    if not re.match(DEVICE_PATTERN, args.device):
        raise GenbenchError(f"--device = {args.device!r}: not a device; use {DEVICES}")
    if not 1 <= args.n <= MAX_SAMPLES:
        raise GenbenchError(f"--n = {args.n}: must be between 1 and {MAX_SAMPLES}")
    if args.seed is not None and not 0 <= args.seed < SEED_LIMIT:
        raise GenbenchError(f"--seed = {args.seed}: must be between 0 and 2**64 - 1")
    out = Path(args.out)
    if out.is_dir():
        raise GenbenchError(f"--out = {args.out}: is a directory; give a .png file path")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise GenbenchError(f"--out = {args.out}: {parent} is a file, not a folder")


def _sample(args: argparse.Namespace) -> None:
    check_sample_args(args)
    from genbench.config.base import validate_value
    from genbench.core.device import resolve_device
    from genbench.core.imaging import save_grid
    from genbench.families.common.model_dir import load_model, sample_images

    model = load_model(args.model, resolve_device(args.device, key="--device"))
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


def _verify(args: argparse.Namespace) -> None:
    """One line per model folder: ok, or what is wrong with it (a weights file changed since
    training, a damaged config.json); then an `error:` line and exit 1 if any is wrong."""
    folders = [Path(folder) for folder in args.folders] or sorted(
        path for path in MODELS.glob("*") if path.is_dir() and not path.name.startswith(".")
    )
    if not folders:
        raise GenbenchError(
            f"{MODELS}/ holds no model folders; train them with `dvc repro`, or name folders"
        )
    from genbench.families.common.model_dir import (
        verify_model_dir,  # torch: the families' network code
    )

    failed = 0
    for folder in folders:
        try:
            print(verify_model_dir(folder), flush=True)
        except GenbenchError as err:
            failed += 1
            print(err, flush=True)
    if failed:
        raise GenbenchError(f"{failed} of {len(folders)} model folders failed verification")


def _diff(args: argparse.Namespace) -> None:
    """The change table since a revision, as Markdown on stdout (rows as JSON with --json)."""
    import json

    from genbench.diff import changes, markdown, since

    commit, found = since(args.rev, Path(args.metrics))
    rows = changes(found)
    if args.json:
        print(json.dumps({"rev": args.rev, "commit": commit, "changes": rows}, indent=1))
    else:
        print(markdown(args.rev, commit, rows), end="")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genbench", description="Train and compare image generative models."
    )
    parser.add_argument("--version", action="version", version=f"genbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser(
        "validate", help="check params.yaml and this machine before any work runs"
    )
    validate.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    validate.set_defaults(func=_validate)
    sample = commands.add_parser("sample", help="draw a grid of images from a trained model")
    sample.add_argument("--model", required=True, help="trained model folder, e.g. models/gan")
    sample.add_argument(
        "--n",
        type=int,
        default=64,
        help=f"number of images, 1..{MAX_SAMPLES} (default: %(default)s)",
    )
    sample.add_argument("--out", required=True, help="PNG file to write")
    sample.add_argument(
        "--seed", type=int, default=None, help="noise seed (default: the run's seed)"
    )
    sample.add_argument("--device", default="auto", help=f"{DEVICES} (default: %(default)s)")
    sample.add_argument(
        "--sampler", choices=("ddim", "ancestral"), help="ddpm: override the sampler"
    )
    sample.add_argument("--steps", type=int, help="ddpm: DDIM steps (default: ddpm.sample_steps)")
    sample.add_argument("--eta", type=float, help="ddpm: DDIM eta (default: ddpm.eta)")
    sample.set_defaults(func=_sample)
    verify = commands.add_parser(
        "verify",
        help="check that model folders' weights still match the sha256 their config.json records",
    )
    verify.add_argument(
        "folders",
        nargs="*",
        metavar="FOLDER",
        help=f"model folders (default: every folder in {MODELS}/)",
    )
    verify.set_defaults(func=_verify)
    diff = commands.add_parser(
        "diff",
        help="what changed in every metrics file since a git revision, better or worse per metric",
    )
    diff.add_argument("rev", nargs="?", default="HEAD", help="git revision (default: HEAD)")
    diff.add_argument(
        "--metrics", default=METRICS_DIR, help="metrics folder (default: %(default)s)"
    )
    diff.add_argument("--json", action="store_true", help="print the rows as JSON")
    diff.set_defaults(func=_diff)
    return parser


def main() -> None:
    """Entry point of the `genbench` console script."""
    args = build_parser().parse_args()
    run_stage(lambda: args.func(args))
