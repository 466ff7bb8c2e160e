"""What scoring the quality-against-compute curve adds to evaluation: the evaluate stage, run as
DVC runs it, on trained models and the real floor, with evaluate.curve_samples as in the params
file and with 0 (no curve), alternating, in one run. Outputs and MLflow go to a temp folder.
Usage (after `make run`):

    .venv/bin/python benchmarks/curve_cost.py [--params params.yaml] [--rounds 2]
        [--models models/gan-0 models/vae-0 models/ddpm-0]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def evaluate(params: Path, model: str | None, out: Path) -> float:
    """Wall seconds of one evaluate stage (model None: the real floor)."""
    args = [sys.executable, str(ROOT / "stages/evaluate.py"), "--params", str(params)]
    args += ["--data", "data/prepared", "--evaluator", "models/evaluator"]
    args += ["--out", str(out / "m.json"), "--card", str(out / "c.json")]
    args += ["--cache", ".cache/fidelity", "--figures", str(out / "figures")]
    if model:
        args += ["--model", model]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{out / 'mlflow.db'}"}
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--models", nargs="+", default=[f"models/{f}-0" for f in ("gan", "vae", "ddpm")]
    )
    args = parser.parse_args()
    values = yaml.safe_load((ROOT / args.params).read_text())
    samples = values["evaluate"]["curve_samples"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {}
        for count in (samples, 0):
            files[count] = tmp / f"params-{count}.yaml"
            values["evaluate"]["curve_samples"] = count
            files[count].write_text(yaml.safe_dump(values))
        times: dict[tuple, list[float]] = {}
        for _ in range(args.rounds):
            for model in [*args.models, None]:
                for count in (samples, 0):
                    seconds = evaluate(files[count], model, tmp)
                    times.setdefault((model or "real", count), []).append(seconds)
    print(f"evaluate stage wall seconds (median of {args.rounds}), curve_samples {samples} vs 0")
    print(f"{'model':<16}{'with curve':>12}{'without':>10}{'added':>9}")
    total = {samples: 0.0, 0: 0.0}
    for model in [*args.models, None]:
        name = model or "real"
        with_curve, without = (statistics.median(times[(name, c)]) for c in (samples, 0))
        total[samples] += with_curve
        total[0] += without
        print(f"{name:<16}{with_curve:>12.1f}{without:>10.1f}{with_curve / without - 1:>9.0%}")
    print(
        f"{'all':<16}{total[samples]:>12.1f}{total[0]:>10.1f}{total[samples] / total[0] - 1:>9.0%}"
    )


if __name__ == "__main__":
    main()
