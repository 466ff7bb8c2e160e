"""DVC stages `evaluate@<model>` and `evaluate_real`: FID/KID/IS/PRC, SSIM and cost of one model's
samples (or of real train images: the floor) against the test split, with a protocol card.
"""

import argparse
import json
from pathlib import Path

from genbench import tracking
from genbench.config.base import Seed, load_params
from genbench.config.evaluate import EvaluateParams
from genbench.data import load_split, read_meta
from genbench.errors import run_stage
from genbench.evaluation import (
    evaluate_images,
    prepare_extractor,
    protocol_card,
    real_floor_images,
    reconstruction_ssim,
    sample_for_evaluation,
    write_figures,
)
from genbench.layout import RUN
from genbench.training.runtime import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, help="prepared data folder")
    parser.add_argument("--model", help="trained model folder; leave out for the real-data floor")
    parser.add_argument("--evaluator", required=True, help="folder of the trained evaluator")
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.add_argument("--card", required=True, help="protocol card JSON to write")
    parser.add_argument("--cache", required=True, help="torch-fidelity feature cache folder")
    parser.add_argument("--figures", required=True, help="folder for the report's sample grids")
    args = parser.parse_args()
    params = load_params(args.params, seed=Seed, evaluate=EvaluateParams)
    cfg, seed, meta = params["evaluate"], params["seed"], read_meta(args.data)
    device = resolve_device(cfg.device)
    if args.model:  # fail now, not after the work, when the model's tracking server is down
        tracking.check_reachable(tracking.tracking_uri())
    extractor = prepare_extractor(cfg, Path(args.evaluator), device.type == "cuda")
    reference, _ = load_split(args.data, "test")
    net, cost, sampler = None, None, None
    if args.model:
        generated, cost, sampler, net = sample_for_evaluation(Path(args.model), cfg, seed, device)
    else:  # the floor: real train images, as many as a model gets to show
        generated = real_floor_images(load_split(args.data, "train")[0], cfg.num_samples, seed)
    key = f"test-{meta['sha256']['test_images.npy'][:16]}"
    results = evaluate_images(
        generated, reference, cfg, extractor, seed, device.type == "cuda", Path(args.cache), key
    )
    pairs = None
    if net is not None and hasattr(net, "reconstruct"):  # models that reconstruct: the VAE
        score, recon = reconstruction_ssim(net, reference, cfg.batch_size)
        results["ssim"]["reconstruction"], pairs = score, (reference, recon)
    if cost is not None:
        results["cost"] = cost
    reference_info = {
        "split": "test",
        "size": len(reference),
        "sha256": meta["sha256"]["test_images.npy"],
    }
    card = protocol_card(
        cfg, extractor, len(generated), reference_info, seed, meta["image_size"], sampler
    )
    write_figures(Path(args.figures), generated, pairs)
    for path, content in ((Path(args.out), results), (Path(args.card), card)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    if args.model:
        record = json.loads((Path(args.model) / RUN).read_text())
        tracking.log_evaluation(record, results, [Path(args.out), Path(args.card)])
    fid = results[extractor.label]["fid"]
    print(f"evaluate: FID ({extractor.label}) {fid:.3f} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
