"""DVC stage `train@<family>-<seed>`: train one family with the shared engine, tracked in MLflow.

Also runs under `torchrun --nproc_per_node=N stages/train.py ...` (DDP; rank 0 writes and logs).
"""

import argparse
from pathlib import Path

from genbench.core.errors import run_stage
from genbench.families import NAMES
from genbench.training.run import run_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, choices=NAMES, help="the family to train")
    parser.add_argument("--seed", required=True, type=int, help="one of compare.seeds")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, help="prepared data folder")
    parser.add_argument("--out", required=True, help="model folder to write (a DVC out)")
    parser.add_argument("--workdir", required=True, help="checkpoints, kept across reruns")
    args = parser.parse_args()
    out = Path(args.out)
    stats = run_training(
        name=args.model,
        seed=args.seed,
        params_file=args.params,
        data_dir=args.data,
        out=out,
        workdir=Path(args.workdir),
    )
    if stats is not None:  # None on DDP ranks > 0, which write nothing
        speed = f"{stats['wall_seconds']:.0f} s, {stats['images_per_second']:.0f} img/s"
        steps = f"{stats['steps']} steps, {stats['train_flops']:.3g} FLOPs"
        print(f"train@{args.model}-{args.seed}: {steps}, {speed} -> {out}")


if __name__ == "__main__":
    run_stage(main)
