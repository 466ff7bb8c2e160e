"""One family's whole training as the `train@<name>` stage runs it: params in, model folder out.

Also runs under `torchrun --nproc_per_node=N` (DDP): rank 0 alone tracks and writes.
"""

import sys
from functools import partial
from pathlib import Path

from genbench import tracking
from genbench.config.base import load_params, params_hash
from genbench.config.compare import CompareParams
from genbench.config.train import TrainParams
from genbench.core.checkpoint import source_fingerprint
from genbench.core.errors import ParamsError
from genbench.core.layout import CURVES
from genbench.core.seeding import seed_everything
from genbench.core.store import load_split, read_meta
from genbench.families import load_family
from genbench.families.common.model_dir import write_model_dir
from genbench.training.budget import budget_card, step_flops
from genbench.training.engine import train
from genbench.training.runtime import start_runtime, stop_runtime
from genbench.training.snapshots import SnapshotKeeper, snapshot_index

# They do not change the trajectory (steps does when a schedule spans the run: resume_keys).
RESUME_KEYS = {"steps", "checkpoint_every", "log_every"}


def resume_keys(cfg: TrainParams) -> set[str]:
    """The keys a checkpoint may differ in and still be continued: RESUME_KEYS, without steps
    when a schedule spans the run (cfg.schedule_spans_steps)."""
    return RESUME_KEYS - {"steps"} if cfg.schedule_spans_steps() else RESUME_KEYS


def warn_large_batch(name: str, batch_size: int, train_size: int) -> None:
    """A batch larger than the train split repeats images in every batch: say so, in one line."""
    if batch_size > train_size:
        print(
            f"warning: {name}.batch_size = {batch_size} is larger than the train split "
            f"({train_size} images): every batch repeats images; lower it to at most {train_size}",
            file=sys.stderr,
        )


def run_training(
    *,
    name: str,
    seed: int,
    params_file: str | Path,
    data_dir: str | Path,
    out: Path,
    workdir: Path,
) -> dict | None:
    """Train family `name` with `seed` for the steps compare.budget gives it, on the prepared
    train split; write `out`; returns the run's stats (None on DDP ranks > 0: they write nothing).

    The checkpoints in `workdir` outlive the stage: a rerun with the same params, data and code
    resumes from the last one (the run hash below decides; a larger budget continues the run
    when the snapshots its new steps need were kept).
    """
    family = load_family(name)
    params = load_params(params_file, compare=CompareParams, **{name: family.params})
    cfg, meta = params[name], read_meta(data_dir)
    data = {key: meta[key] for key in ("channels", "image_size", "source")}
    problem = cfg.size_problem(name, data["image_size"])
    if problem:
        raise ParamsError(f"{params_file}: {problem}")
    tracking.check_reachable(tracking.tracking_uri())  # a dead store fails before any compute
    flops = step_flops(family, cfg, data["channels"], data["image_size"])
    budget = budget_card(params["compare"].budget, cfg, flops, name)
    cfg = cfg.model_copy(update={"steps": budget["steps"]})
    fractions = params["compare"].curve_fractions
    index = snapshot_index(fractions, cfg.steps, flops, cfg.batch_size)
    keeper = SnapshotKeeper.for_run(workdir, index)
    seed_everything(seed)  # the networks' initial weights come from the seed
    parts = family.build(cfg, data["channels"], data["image_size"])
    runtime = start_runtime(cfg.device, f"{name}.device")
    try:
        images, _ = load_split(data_dir, "train")
        warn_large_batch(name, cfg.batch_size, len(images))
        shaping = [name, seed, cfg.model_dump(exclude=resume_keys(cfg)), meta["sha256"]]
        run_hash = params_hash([*shaping, runtime.world_size, source_fingerprint()])
        config = {
            "family": name,
            "params": cfg.model_dump(mode="json"),
            "data": data,
            "seed": seed,
            "budget": budget,
        }
        with tracking.training_run(name, params_file, config, runtime.is_main) as log_metrics:
            if runtime.is_main:
                tracking.log_dataset(data_dir, meta, "train", "training")
            result = train(
                parts,
                images,
                cfg,
                seed=seed,
                workdir=workdir,
                run_hash=run_hash,
                runtime=runtime,
                log_metrics=log_metrics,
                snapshots=keeper,
            )
            result.stats.update(budget, seed=seed)
            config["parameter_count"] = result.stats["parameter_count"]  # for evaluation's cost
            if runtime.is_main:
                result.stats["snapshot_seconds"] = {str(k): v for k, v in keeper.seconds().items()}
                # the Models tab and the registry, named gan-seed0, ...
                model_id = tracking.log_model(result.final, tracking.model_name(name, seed))
                record = tracking.run_record(model_id)
                snapshots = partial(keeper.copy_to, index=index)
                write_model_dir(
                    out, result.final, config, result.stats, workdir / CURVES, record, snapshots
                )
                tracking.log_model_dir(out)  # and the weights' sha256: evaluation finds the run
        return result.stats if runtime.is_main else None
    finally:
        stop_runtime(runtime)
