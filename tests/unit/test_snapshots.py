"""Snapshots for quality against compute: their steps and FLOPs, and that each holds exactly the
weights an uninterrupted run would keep at that step (also across a kill and resume)."""

import json

import pytest
import torch

from genbench.config.compare import CompareParams
from genbench.core import checkpoint
from genbench.core.layout import SNAPSHOT_INDEX, SNAPSHOTS
from genbench.families.gan import family as gan
from genbench.families.gan.params import GanParams
from genbench.training.engine import train
from genbench.training.runtime import Runtime
from genbench.training.snapshots import SnapshotKeeper, snapshot_index, snapshot_steps
from tests.unit.test_engine import digits_like

CPU = Runtime(torch.device("cpu"))


def test_fractions_give_rounded_steps_and_exact_flops():
    index = snapshot_index([0.125, 0.25, 0.5, 1.0], 126, 23_727_000_000, 64)
    assert [row["step"] for row in index] == [16, 32, 63, 126]
    for row in index:
        assert row["flops"] == row["step"] * 23_727_000_000  # integers: exact
        assert row["images_seen"] == row["step"] * 64
    assert [row["file"] for row in index] == [
        "step-0000016.safetensors",
        "step-0000032.safetensors",
        "step-0000063.safetensors",
        None,
    ]
    # a tiny budget: never step 0; fractions that land on the last step are the final weights
    assert snapshot_steps([0.01, 0.5, 0.9, 1.0], 2) == [1, 1, 2, 2]
    assert [r["file"] for r in snapshot_index([0.01, 0.9, 1.0], 2, 10, 1)] == [
        "step-0000001.safetensors",
        None,
        None,
    ]


def test_snapshot_fractions_are_checked_and_the_final_point_is_always_on_the_curve():
    assert CompareParams(snapshots=[0.1, 0.5]).curve_fractions == [0.1, 0.5, 1.0]
    assert CompareParams().curve_fractions == [0.125, 0.25, 0.5, 1.0]
    for bad, said in (([0.0, 1.0], "0.0 is not a fraction"), ([0.5, 0.25], "increasing")):
        with pytest.raises(ValueError, match=said):
            CompareParams(snapshots=bad)


PARAMS = GanParams(
    steps=6, batch_size=8, z_dim=8, widths=[16], ema_decay=0.9, log_every=1, checkpoint_every=3
)


def gan_run(workdir, steps: int, keeper=None, stop_at: int | None = None):
    """A seed-0 tiny DCGAN run (the batch-norm refresh of its EMA included); `stop_at`: killed
    while logging that step (after its update, before its snapshot and checkpoint)."""

    def log(row, step):
        if step == stop_at:
            raise KeyboardInterrupt

    torch.manual_seed(0)  # the same initial weights for every run
    cfg = PARAMS.model_copy(update={"steps": steps})
    parts = gan.build(cfg, 1, 8)
    return train(
        parts,
        digits_like(64),
        cfg,
        seed=0,
        workdir=workdir,
        run_hash="h",
        runtime=CPU,
        log_metrics=log,
        snapshots=keeper,
    )


def assert_same_weights(expected: dict, found: dict) -> None:
    assert expected.keys() == found.keys()
    for key, value in expected.items():
        assert torch.equal(value, found[key]), key


def test_a_snapshot_holds_the_weights_a_run_stopped_at_its_step_keeps(tmp_path):
    index = snapshot_index([0.34, 0.67, 1.0], 6, 1, 8)  # steps 2, 4, 6
    keeper = SnapshotKeeper.for_run(tmp_path / "whole", index)
    assert keeper.steps == {2, 4}
    whole = gan_run(tmp_path / "whole", 6, keeper)
    for step in (2, 4):
        stopped = gan_run(tmp_path / f"stop-{step}", step).final.state_dict()
        assert_same_weights(stopped, checkpoint.load_weights(keeper.path(step)))
    # keeping snapshots changes nothing in the run itself
    assert_same_weights(gan_run(tmp_path / "plain", 6).final.state_dict(), whole.final.state_dict())
    seconds = keeper.seconds()
    assert 0 < seconds[2] < seconds[4] <= whole.stats["wall_seconds"]
    keeper.copy_to(tmp_path / "model", index)
    assert sorted(p.name for p in (tmp_path / "model" / SNAPSHOTS).iterdir()) == [
        "snapshots.json",
        "step-0000002.safetensors",
        "step-0000004.safetensors",
    ]
    assert json.loads((tmp_path / "model" / SNAPSHOTS / SNAPSHOT_INDEX).read_text()) == index


def test_snapshots_survive_a_kill_and_resume_bit_for_bit(tmp_path):
    index = snapshot_index([0.34, 0.67, 1.0], 6, 1, 8)
    whole = SnapshotKeeper.for_run(tmp_path / "whole", index)
    gan_run(tmp_path / "whole", 6, whole)
    split = SnapshotKeeper.for_run(tmp_path / "split", index)
    # killed at step 5: checkpoint at 3, snapshots at 2 and 4 written; the resume redoes 4
    with pytest.raises(KeyboardInterrupt):
        gan_run(tmp_path / "split", 6, split, stop_at=5)
    resumed = gan_run(tmp_path / "split", 6, split)
    assert resumed.stats["resumed_from_step"] == 3
    for step in (2, 4):
        assert_same_weights(
            checkpoint.load_weights(whole.path(step)), checkpoint.load_weights(split.path(step))
        )


def test_a_checkpoint_past_a_snapshot_it_did_not_keep_is_not_continued(tmp_path, capsys):
    gan_run(tmp_path, 3)  # no snapshots kept; checkpoint at step 3
    keeper = SnapshotKeeper.for_run(tmp_path, snapshot_index([0.34, 1.0], 6, 1, 8))
    result = gan_run(tmp_path, 6, keeper)
    assert result.stats["resumed_from_step"] == 0
    assert "the snapshot due at step 2 was not kept" in capsys.readouterr().out
    assert keeper.path(2).exists()
