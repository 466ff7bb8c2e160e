"""DVC stage `train@<model>`: train one family with the shared engine, tracked in MLflow.

Also runs under `torchrun --nproc_per_node=N stages/train.py ...` (DDP; rank 0 writes and logs).
"""

import argparse
from pathlib import Path

from genbench import tracking
from genbench.checkpoint import source_fingerprint
from genbench.config.base import Seed, load_params, params_hash
from genbench.data import load_split, read_meta
from genbench.errors import ParamsError, run_stage
from genbench.layout import CURVES
from genbench.training.engine import seed_everything, train
from genbench.training.families import FAMILIES, load_family
from genbench.training.outputs import write_model_dir
from genbench.training.runtime import start_runtime, stop_runtime

RESUME_KEYS = {"steps", "checkpoint_every", "log_every"}  # they do not change the trajectory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, choices=sorted(FAMILIES))
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, help="prepared data folder")
    parser.add_argument("--out", required=True, help="model folder to write (a DVC out)")
    parser.add_argument("--workdir", required=True, help="checkpoints, kept across reruns")
    args = parser.parse_args()
    family, workdir = load_family(args.model), Path(args.workdir)
    params = load_params(args.params, seed=Seed, **{args.model: family.PARAMS})
    cfg, seed, meta = params[args.model], params["seed"], read_meta(args.data)
    data = {key: meta[key] for key in ("channels", "image_size", "source")}
    seed_everything(seed)  # the networks' initial weights come from the seed
    try:
        parts = family.build(cfg, data["channels"], data["image_size"])
    except ValueError as err:
        raise ParamsError(f"{args.params}: {args.model}.widths / data.image_size: {err}") from None
    runtime = start_runtime(cfg.device)
    images, _ = load_split(args.data, "train")
    shaping = [args.model, seed, cfg.model_dump(exclude=RESUME_KEYS), meta["sha256"]]
    run_hash = params_hash([*shaping, runtime.world_size, source_fingerprint(__file__)])
    config = {
        "family": args.model,
        "params": cfg.model_dump(mode="json"),
        "data": data,
        "seed": seed,
    }
    ok = False
    try:
        if runtime.is_main:
            tracking.start_training_run(args.model, args.params, config, run_hash, workdir)
        log = tracking.log_metrics if runtime.is_main else None
        result = train(parts, images, cfg, seed, workdir, run_hash, runtime, log_metrics=log)
        if runtime.is_main:
            out, stats = Path(args.out), result.stats
            write_model_dir(
                out, result.final, config, stats, workdir / CURVES, tracking.run_record()
            )
            tracking.log_artifacts(out)
            speed = f"{stats['wall_seconds']:.0f} s, {stats['images_per_second']:.0f} img/s"
            print(f"train@{args.model}: {speed} -> {out}")
        ok = True
    finally:
        if runtime.is_main:
            tracking.end_run(ok)
        stop_runtime(runtime)


if __name__ == "__main__":
    run_stage(main)
