"""Several workers on one CUDA device: the default graph's trainings, k at a time.

    .venv/bin/python benchmarks/gpu_workers.py [--workers 1,3,9] [--families gan,vae,ddpm]
        [--seeds 0,1,2] [--params params.yaml] [--data data/prepared] [--out DIR]

For each worker count k, `pipelines.workers.plan(k, cores, CUDA devices)` gives each worker its
torch threads and device, as the parallel flow does (issue 27). The trainings of families ×
seeds then run as `stages/train.py` processes from one queue, k at a time, each with its
worker's environment (OMP_NUM_THREADS, CUDA_VISIBLE_DEVICES). DVC and Prefect are left out:
they add the same per-stage cost at every k.

Prints the plan `orchestration.workers: auto` gives on this machine; per round the wall time,
its ratio to the first round's, and the device each training reported; and which trainings'
weights differ from the first round's (`--workers 1,1` compares two runs at equal settings).
Expect some: the threads per worker change with the count, and on CPU threads change the
digits; on CUDA two runs at the same settings already differ (docs/benchmarks.md). Needs the
prepared data (`dvc repro preprocess`). Writes only under --out (a temporary folder by default).
"""

import argparse
import hashlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.workers import Slot, available_cores, cuda_devices, describe, plan  # noqa: E402

WHY_DIFFER = "threads per worker differ on CPU; on CUDA two runs at equal settings differ too"


def train(job: tuple[str, int], slots: queue.Queue, args, folder: Path) -> dict:
    """One training on a free worker's slot; its seconds, device and weights' sha256."""
    model, seed = job
    slot: Slot = slots.get()
    try:
        name = f"{model}-{seed}"
        env = {
            **os.environ,
            **slot.env(),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
            ),
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / f'mlflow-{slot.index}.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "HF_HUB_OFFLINE": "1",
        }
        cmd = [
            sys.executable,
            str(ROOT / "stages/train.py"),
            *("--model", model, "--seed", str(seed), "--params", str(args.params)),
            *("--data", str(args.data), "--out", str(folder / name)),
            *("--workdir", str(folder / f"checkpoints-{name}")),
        ]
        start = time.perf_counter()
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise SystemExit(f"error: train@{name} failed on {slot.describe()}: {' | '.join(tail)}")
        stats = json.loads((folder / name / "train_stats.json").read_text())
        weights = (folder / name / "weights.safetensors").read_bytes()
        return {
            "stage": f"train@{name}",
            "seconds": seconds,
            "device": stats.get("device", "?"),
            "sha256": hashlib.sha256(weights).hexdigest(),
            "worker": slot.index,
        }
    finally:
        slots.put(slot)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--workers", default="1,3,9", help="worker counts, one round each (1,1: run to run)"
    )
    parser.add_argument("--families", default="gan,vae,ddpm")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--data", type=Path, default=ROOT / "data/prepared")
    parser.add_argument("--out", type=Path, help="where the models go (default: a temp folder)")
    args = parser.parse_args()
    if not (args.data / "meta.json").is_file():
        sys.exit(f"error: --data {args.data} holds no prepared split; run `dvc repro preprocess`")
    counts = [int(k) for k in args.workers.split(",")]
    jobs = [(m, int(s)) for m in args.families.split(",") for s in args.seeds.split(",")]
    cores, gpus = available_cores(), cuda_devices()
    print(f"{cores} cores, {gpus} CUDA device(s); {len(jobs)} trainings; params {args.params}")
    print(f"orchestration.workers: auto -> {describe(plan('auto', cores, gpus), cores)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="genbench-gpu-workers-"))
    rounds: list[tuple[int, float, list[dict]]] = []  # (workers, wall, rows); a count may repeat
    for index, k in enumerate(counts):
        slots: queue.Queue = queue.Queue()
        workers = plan(k, cores, gpus)
        for slot in workers:
            slots.put(slot)
        folder = out / f"round-{index}-workers-{k}"
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=k) as pool:
            rows = list(pool.map(lambda job, f=folder, s=slots: train(job, s, args, f), jobs))
        wall = time.perf_counter() - start
        rounds.append((k, wall, rows))
        devices = sorted({r["device"] for r in rows})
        mean = sum(r["seconds"] for r in rows) / len(jobs)
        print(
            f"workers {k} ({describe(workers, cores)}): {wall:.1f} s wall, "
            f"{rounds[0][1] / wall:.2f}x the speed of workers {counts[0]}; "
            f"{mean:.1f} s a training; devices {devices}",
            flush=True,
        )
        for row in rows:
            print(f"  {row['stage']}: {row['seconds']:.1f} s on worker {row['worker']}")
    first = {r["stage"]: r["sha256"] for r in rounds[0][2]}
    differ = sorted(
        f"{r['stage']} (round {index + 1}, workers {k})"
        for index, (k, _, rows) in enumerate(rounds[1:], start=1)
        for r in rows
        if r["sha256"] != first[r["stage"]]
    )
    print(
        "weights equal in every round"
        if not differ
        else f"weights differ from round 1: {', '.join(differ)}; {WHY_DIFFER}"
    )
    print(f"models in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
