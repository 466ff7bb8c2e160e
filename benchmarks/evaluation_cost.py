"""What a part of evaluation costs: the evaluate stage, run as DVC runs it, on trained models and
the real floor, with the part on (the params file's value) and off, alternating, in one run.
Parts: `curve`, the quality-against-compute curve (evaluate.curve_samples against 0); `spaces`,
the further feature spaces (evaluate.feature_spaces against []). Outputs and MLflow go to a temp
folder. Usage (after `make run`):

    .venv/bin/python benchmarks/evaluation_cost.py --part curve|spaces [--params params.yaml]
        [--rounds 2] [--models models/gan-0 models/vae-0 models/ddpm-0]
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
PARTS = {"curve": ("curve_samples", 0), "spaces": ("feature_spaces", [])}  # key, value when off


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
    parser.add_argument("--part", choices=sorted(PARTS), required=True)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--models", nargs="+", default=[f"models/{f}-0" for f in ("gan", "vae", "ddpm")]
    )
    args = parser.parse_args()
    values = yaml.safe_load((ROOT / args.params).read_text())
    key, off = PARTS[args.part]
    on = values["evaluate"][key]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {}
        for state, value in (("on", on), ("off", off)):
            files[state] = tmp / f"params-{state}.yaml"
            values["evaluate"][key] = value
            files[state].write_text(yaml.safe_dump(values))
        times: dict[tuple, list[float]] = {}
        for _ in range(args.rounds):
            for model in [*args.models, None]:
                for state in ("on", "off"):
                    seconds = evaluate(files[state], model, tmp)
                    times.setdefault((model or "real", state), []).append(seconds)
    print(f"evaluate stage wall seconds (median of {args.rounds}), {key} {on} vs {off}")
    print(f"{'model':<16}{'with':>10}{'without':>10}{'added':>9}")
    total = {"on": 0.0, "off": 0.0}
    for model in [*args.models, None]:
        name = model or "real"
        with_part, without = (statistics.median(times[(name, s)]) for s in ("on", "off"))
        total["on"] += with_part
        total["off"] += without
        print(f"{name:<16}{with_part:>10.1f}{without:>10.1f}{with_part / without - 1:>9.0%}")
    added = total["on"] / total["off"] - 1
    print(f"{'all':<16}{total['on']:>10.1f}{total['off']:>10.1f}{added:>9.0%}")


if __name__ == "__main__":
    main()
