"""DVC stage `train_evaluator`: the offline feature extractor, a CNN on the train labels."""

import argparse
import json
from pathlib import Path

from genbench import checkpoint
from genbench.config.base import Seed, load_params
from genbench.config.evaluate import EvaluateParams
from genbench.data import load_split, read_meta
from genbench.data.store import atomic_dir, sha256_file
from genbench.errors import GenbenchError, run_stage
from genbench.training.classifier import accuracy, train_evaluator
from genbench.training.runtime import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, help="prepared data folder")
    parser.add_argument("--out", required=True, help="evaluator folder to write")
    args = parser.parse_args()
    params = load_params(args.params, seed=Seed, evaluate=EvaluateParams)
    cfg, meta = params["evaluate"], read_meta(args.data)
    info = {"trained": False, "image_size": meta["image_size"], "channels": meta["channels"]}
    with atomic_dir(Path(args.out)) as tmp:
        if not meta["labelled"]:
            info["reason"] = (
                f"data.source {meta['source']!r} has no labels (no class subfolders): "
                "the evaluator cannot be trained; set evaluate.feature_extractor: "
                "inception-v3-compat"
            )
            if cfg.feature_extractor == "evaluator":
                raise GenbenchError(info["reason"])
        else:
            images, labels = load_split(args.data, "train")
            test_images, test_labels = load_split(args.data, "test")
            device = resolve_device(cfg.device)
            net = train_evaluator(
                images, labels, len(meta["classes"]), cfg.evaluator, params["seed"], device
            )
            checkpoint.save(net.cpu().state_dict(), tmp / "weights.pt")
            info.update(
                trained=True,
                num_classes=len(meta["classes"]),
                feature_dim=cfg.evaluator.feature_dim,
                train_accuracy=accuracy(net, images, labels),
                test_accuracy=accuracy(net, test_images, test_labels),
                weights_sha256=sha256_file(tmp / "weights.pt"),
            )
        (tmp / "evaluator.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    print(f"train_evaluator: test accuracy {info.get('test_accuracy', 'n/a')} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
