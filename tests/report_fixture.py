"""Pipeline outputs for the report, written by hand-free code: every run's metrics drawn from
seeded random numbers around a per-family level, compare.json computed by the real compare
code, figures drawn with PIL, curves from a formula. No training needed.

Planted: the DDPM's FID and KID are far below the others' (a significant best); density is 10%
higher for the VAE with a wide spread (separated from the GAN only borderline, the DDPM between
them); every other metric has the same level for all families (not separated). Along the budget
(CURVE_LEVEL, the last point being the final level): the VAE is best at 25%, the GAN and the DDPM
are equivalent at 50%, the DDPM is best at the end, and the GAN's final FID and KID are worse
than at 50% (its warning).

A second feature space, random-cnn, ranks FID the other way round (the GAN best, the DDPM worst):
the headline says the spaces disagree on FID.
"""

import json
import random
from pathlib import Path

from PIL import Image

from genbench.compare.run import ComparePaths, run_compare
from genbench.config.compare import CompareParams
from genbench.config.verdict import VerdictParams
from genbench.evaluation.card import protocol_id

NAMES = ("gan", "vae", "ddpm")
SEEDS = (0, 1, 2)
HOSTILE = '<script>alert("x")</script>|&'  # class names from user data
LINK = "[link](https://evil.example)"
FID_LEVEL = {"gan": 20.0, "vae": 22.0, "ddpm": 5.0, "real": 0.5}
DENSITY_LEVEL = {"gan": 1.0, "vae": 1.1, "ddpm": 1.0, "real": 1.0}
FRACTIONS, STEPS, FLOPS_PER_STEP = (0.25, 0.5, 1.0), 100, 10**7
SPACE_FID_LEVEL = {"gan": 0.5, "vae": 1.0, "ddpm": 3.0, "real": 0.05}  # random-cnn's
CURVE_LEVEL = {"gan": (40.0, 12.0, 20.0), "vae": (25.0, 23.0, 22.0), "ddpm": (60.0, 12.1, 5.0)}


def curve_for(family: str, seed: int, salt: int = 0) -> dict:
    """A planted quality-against-compute curve (FID; KID a tenth of it) at 200 samples."""
    rng = random.Random(f"curve-{family}-{seed}-{salt}")
    points = []
    for fraction, level in zip(FRACTIONS, CURVE_LEVEL[family], strict=True):
        step = round(fraction * STEPS)
        fid = rng.gauss(level, 0.3)
        points.append(
            {"fraction": fraction, "step": step, "flops": step * FLOPS_PER_STEP}
            | {"images_seen": step * 64, "fid": fid, "kid_mean": fid / 10, "kid_std": 0.01}
        )
    return {"extractor": "evaluator", "samples": 200, "points": points}


def metrics_for(family: str, seed: int, salt: int = 0) -> dict:
    rng = random.Random(f"{family}-{seed}-{salt}")
    level = FID_LEVEL[family]
    quality = {
        "fid": rng.gauss(level, 0.3),
        "kid_mean": rng.gauss(level / 10, 0.03),
        "kid_std": rng.uniform(0, 0.2),
        "is_mean": rng.gauss(7, 1),
        "is_std": rng.uniform(0, 0.3),
        "precision": rng.gauss(0.7, 0.1),
        "recall": rng.gauss(0.7, 0.1),
    }
    ssim = {"diversity": rng.gauss(0.4, 0.05), "diversity_real": 0.344}
    if family == "vae":
        ssim["reconstruction"] = rng.uniform(0.8, 0.95)
    # its own generator: the other metrics' draws stay as they were
    quality["density"] = random.Random(f"density-{family}-{seed}-{salt}").gauss(
        DENSITY_LEVEL[family], 0.08
    )
    other = random.Random(f"space-{family}-{seed}-{salt}")  # its own draws: the rest stay
    space = {"fid": other.gauss(SPACE_FID_LEVEL[family], 0.05)}
    space |= {"kid_mean": other.gauss(SPACE_FID_LEVEL[family] / 10, 0.005), "kid_std": 0.01}
    space |= {k: other.gauss(0.7, 0.1) for k in ("precision", "recall", "density", "coverage")}
    values = {"extractor": "evaluator", "scores": quality, "spaces": {"random-cnn": space}}
    values["ssim"] = ssim
    if family == "real":
        values["curve_floor"] = {"extractor": "evaluator", "samples": 200, "fid": 2.0}
        values["curve_floor"] |= {"kid_mean": 0.01, "kid_std": 0.01}
    else:
        values["curve"] = curve_for(family, seed, salt)
        values["cost"] = {
            "parameters": 1000 * (len(family) + 1),
            "generator_parameters": rng.randrange(5_000, 10_000),
            "sampling_ms_per_image": rng.uniform(0.01, 50),
            "train_steps": 100,
        }
    values["protocol"] = {"id": protocol_id(card(family))}
    return values


def card(family: str) -> dict:
    sampler = {"sampler": "ddim", "steps": 50, "eta": 0.0} if family == "ddpm" else None
    return {
        "num_samples": 1000,
        "reference": {"split": "test", "size": 360, "sha256": "ab" * 32},
        "feature_extractor": {"name": "evaluator", "weights_sha256": "cd" * 32},
        "feature_spaces": [{"name": "random-cnn", "weights_sha256": "ef" * 32}],
        "sampler": sampler,
    }


def write_png(path: Path, size: tuple[int, int], shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, shade).save(path)


def write_model(root: Path, family: str, seed: int) -> None:
    model = root / "models" / f"{family}-{seed}"
    model.mkdir(parents=True, exist_ok=True)
    budget = {"budget": {"unit": "flops", "amount": 1e9}, "steps": 100, "flops_per_step": 10**7}
    budget |= {"train_flops": 10**9, "images_seen": 6400}
    config = {"family": family, "params": {"steps": 10, "lr": 0.001}, "data": {}, "seed": seed}
    (model / "config.json").write_text(json.dumps({**config, "budget": budget}))
    run = {
        "run_id": f"run-{family}-{seed}",
        "experiment_id": "1",
        "tracking_uri": "http://127.0.0.1:5000",
    }
    (model / "mlflow_run.json").write_text(json.dumps(run))
    stats = {"steps": STEPS, "wall_seconds": 40.0 + seed, "images_per_second": 160.0}
    stats["snapshot_seconds"] = {str(round(f * STEPS)): f * 40 + seed for f in FRACTIONS[:-1]}
    (model / "train_stats.json").write_text(json.dumps(stats))
    rows = [f"{10 * s},{1 / (s + 1):.4f},{100 + s}" for s in range(1, 6)]
    (model / "losses.csv").write_text("step,loss,images_per_second\n" + "\n".join(rows) + "\n")


def write_outputs(
    root: Path, salt: int = 0, seeds: tuple[int, ...] = SEEDS, data_folder: str = "prepared"
) -> dict[str, dict]:
    """metrics/ (runs, real, compare.json), models/, figures/ and data/<data_folder>/meta.json
    under root (compare.json made by the real compare code, from all of them); returns every
    run's metrics by name (`gan-0`, ..., `real`)."""
    written = {}
    (root / "metrics/runs").mkdir(parents=True, exist_ok=True)
    for index, family in enumerate(NAMES):
        for seed in seeds:
            name = f"{family}-{seed}"
            written[name] = metrics_for(family, seed, salt)
            (root / f"metrics/runs/{name}.json").write_text(json.dumps(written[name]))
            (root / f"metrics/runs/{name}.protocol.json").write_text(json.dumps(card(family)))
            write_png(root / f"figures/{name}/samples.png", (64, 64), 40 * index)
            write_model(root, family, seed)
        if family == "vae":
            write_png(root / f"figures/vae-{seeds[0]}/reconstructions.png", (64, 16), 200)
    written["real"] = metrics_for("real", 0, salt)
    (root / "metrics/real.json").write_text(json.dumps(written["real"]))
    (root / "metrics/real.protocol.json").write_text(json.dumps(card("real")))
    write_png(root / "figures/real/samples.png", (64, 64), 250)
    meta = {"image_size": 8, "channels": 1, "counts": {"train": 10, "val": 2, "test": 5}}
    meta |= {"source": "folder", "classes": ["zero", HOSTILE, LINK]}
    (root / "data" / data_folder).mkdir(parents=True, exist_ok=True)
    (root / "data" / data_folder / "meta.json").write_text(json.dumps(meta))
    recompare(root, seeds, data_folder)
    return written


def recompare(root: Path, seeds: tuple[int, ...] = SEEDS, data_folder: str = "prepared") -> dict:
    """The compare stage over what lies under root: metrics/compare.json (and curves)."""
    metrics = root / "metrics"
    paths = ComparePaths(
        metrics / "runs",
        metrics / "real.json",
        root / "models",
        root / "data" / data_folder,
        metrics / "compare.json",
        curves=metrics / "curves",
    )
    cfg = CompareParams(seeds=list(seeds), confidence=0.95)
    return run_compare(list(NAMES), cfg, VerdictParams(), paths)
