"""DDPM sampling cost: ms per image for ancestral sampling (every training step) and DDIM with
25/50/100 steps, on the same trained model, in one run. Usage:

    .venv/bin/python benchmarks/sampling.py [--model models/ddpm] [--n 16] [--rounds 2]
"""

import argparse
import statistics
import time

import torch

from genbench.families.common.model_dir import load_model, sample_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/ddpm")
    parser.add_argument("--n", type=int, default=16, help="images per measurement (one batch)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model = load_model(args.model)
    family, net, params = model.family, model.net, model.params
    settings = [("ancestral", params.num_train_timesteps)] + [("ddim", s) for s in (25, 50, 100)]
    print(
        f"{args.model}: {sum(p.numel() for p in net.parameters()):,} parameters, "
        f"{args.n} images per batch, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"{'sampler':<10}{'steps':>7}{'ms/image':>12}{'vs DDIM 50':>12}")
    results = {}
    for _ in range(args.rounds):  # rounds alternate over the samplers
        for sampler, steps in settings:
            run = params.model_copy(update={"sampler": sampler, "sample_steps": steps})
            start = time.perf_counter()
            sample_images(family, net, run, args.n, seed=0, batch_size=args.n)
            results.setdefault((sampler, steps), []).append(
                (time.perf_counter() - start) * 1000 / args.n
            )
    base = statistics.median(results[("ddim", 50)])
    for (sampler, steps), times in results.items():
        ms = statistics.median(times)
        print(f"{sampler:<10}{steps:>7}{ms:>12.1f}{ms / base:>11.2f}x")


if __name__ == "__main__":
    main()
