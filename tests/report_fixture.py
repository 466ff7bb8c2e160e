"""Pipeline outputs for the report, written by hand-free code: metrics computed from seeded
random numbers, figures drawn with PIL, curves from a formula. No training needed.
"""

import json
import random
from pathlib import Path

from PIL import Image

NAMES = ("gan", "vae", "ddpm")
HOSTILE = '<script>alert("x")</script>|&'  # class names from user data
LINK = "[link](https://evil.example)"


def metrics_for(name: str, seed: int) -> dict:
    rng = random.Random(f"{name}-{seed}")
    quality = {
        "fid": rng.uniform(1, 30),
        "kid_mean": rng.uniform(0, 2),
        "kid_std": rng.uniform(0, 0.2),
        "is_mean": rng.uniform(5, 9),
        "is_std": rng.uniform(0, 0.3),
        "precision": rng.uniform(0.5, 1),
        "recall": rng.uniform(0.5, 1),
    }
    ssim = {"diversity": rng.uniform(0.3, 0.5), "diversity_real": 0.344}
    if name == "vae":
        ssim["reconstruction"] = rng.uniform(0.8, 0.95)
    values = {"evaluator": quality, "ssim": ssim}
    if name != "real":
        values["cost"] = {
            "parameters": rng.randrange(10_000, 2_000_000),
            "generator_parameters": rng.randrange(5_000, 10_000),
            "sampling_ms_per_image": rng.uniform(0.01, 50),
            "train_seconds": rng.uniform(10, 200),
            "train_images_per_second": rng.uniform(100, 10_000),
        }
    return values


def card(name: str) -> dict:
    sampler = {"sampler": "ddim", "steps": 50, "eta": 0.0} if name == "ddpm" else None
    return {
        "num_samples": 1000,
        "reference": {"split": "test", "size": 360, "sha256": "ab" * 32},
        "feature_extractor": {"name": "evaluator", "weights_sha256": "cd" * 32},
        "sampler": sampler,
    }


def write_png(path: Path, size: tuple[int, int], shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, shade).save(path)


def write_outputs(root: Path, seed: int = 0) -> dict[str, dict]:
    """metrics/, models/, figures/ and data/prepared/meta.json under root; returns the metrics."""
    written = {}
    for index, name in enumerate((*NAMES, "real")):
        written[name] = metrics_for(name, seed)
        (root / "metrics").mkdir(parents=True, exist_ok=True)
        (root / f"metrics/{name}.json").write_text(json.dumps(written[name]))
        (root / f"metrics/{name}.protocol.json").write_text(json.dumps(card(name)))
        write_png(root / f"figures/{name}/samples.png", (64, 64), 40 * index)
        if name == "real":
            continue
        model = root / "models" / name
        model.mkdir(parents=True, exist_ok=True)
        config = {"family": name, "params": {"steps": 10, "lr": 0.001}, "data": {}, "seed": 0}
        (model / "config.json").write_text(json.dumps(config))
        run = {
            "run_id": f"run-{name}",
            "experiment_id": "1",
            "tracking_uri": "http://127.0.0.1:5000",
        }
        (model / "mlflow_run.json").write_text(json.dumps(run))
        rows = [f"{10 * s},{1 / (s + 1):.4f},{100 + s}" for s in range(1, 6)]
        (model / "losses.csv").write_text("step,loss,images_per_second\n" + "\n".join(rows) + "\n")
    write_png(root / "figures/vae/reconstructions.png", (64, 16), 200)
    meta = {"image_size": 8, "channels": 1, "counts": {"train": 10, "test": 5}}
    meta |= {"source": "folder", "classes": ["zero", HOSTILE, LINK]}
    (root / "data/prepared").mkdir(parents=True, exist_ok=True)
    (root / "data/prepared/meta.json").write_text(json.dumps(meta))
    return written
