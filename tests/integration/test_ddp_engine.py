"""The shared loop with 2 DDP processes (gloo, CPU) on a GAN whose discriminator has batch norm:
ranks keep identical weights, and a NaN on one rank stops every rank with the same error."""

import os
import subprocess
import sys
import time

import torch

from genbench.core import checkpoint
from tests.conftest import ROOT
from tests.integration.ddp_worker import NAN_STEP, PARAMS
from tests.integration.processes import free_port

TIMEOUT = 180  # seconds for both ranks; one left waiting in a collective would wait 30 minutes


def launch(scenario: str, out) -> list[dict]:
    """Start both ranks as torchrun would, without its agent (which kills a failed rank's peers
    and so would hide a hang); return what each wrote. Fails if either is still running at
    TIMEOUT."""
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}
    env["MASTER_PORT"] = str(free_port())
    cmd = [sys.executable, "-m", "tests.integration.ddp_worker", scenario, str(out)]
    procs = []
    for rank in range(2):
        with open(out / f"rank{rank}.log", "w") as log:
            rank_env = {**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}
            procs.append(
                subprocess.Popen(cmd, cwd=ROOT, env=rank_env, stdout=log, stderr=subprocess.STDOUT)
            )
    deadline = time.monotonic() + TIMEOUT
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    hung = [rank for rank, p in enumerate(procs) if p.poll() is None]
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    logs = "\n".join((out / f"rank{r}.log").read_text()[-3000:] for r in range(2))
    assert not hung, f"ranks {hung} still running after {TIMEOUT} s:\n{logs}"
    assert [p.returncode for p in procs] == [0, 0], logs
    return [checkpoint.load(out / f"rank{r}.pt") for r in range(2)]


def test_ranks_keep_identical_gan_weights(tmp_path):
    first, second = launch("gan", tmp_path)
    # DDP copies no discriminator buffers at its forwards (it runs three per step), the
    # generator's it does
    expected = [{"generator": True, "discriminator": False}] * PARAMS.steps
    assert first["seen"] == expected and second["seen"] == expected
    for name, state in first["modules"].items():
        for key, value in state.items():
            if "running_" in key or "num_batches" in key:
                continue  # batch-norm statistics: of each rank's own shard of the batch
            assert torch.equal(value, second["modules"][name][key]), (name, key)
    stats = "net.3.running_mean"  # the discriminator's only batch norm: per rank, not broadcast
    d0, d1 = first["modules"]["discriminator"], second["modules"]["discriminator"]
    assert not torch.equal(d0[stats], d1[stats])
    # the EMA generator, its batch-norm statistics refreshed from the same noise on both ranks
    for key, value in first["final"].items():
        assert torch.equal(value, second["final"][key]), key


def test_a_nan_on_one_rank_stops_every_rank_with_the_same_error(tmp_path):
    """Checked alone, rank 1 would raise and rank 0 wait in the next gradient all-reduce: under
    gloo until rank 1's exit resets the connection (a RuntimeError), under NCCL until a timeout."""
    first, second = launch("nan", tmp_path)
    assert first["error"] == second["error"]
    assert first["error"].startswith(f"step {NAN_STEP}: loss_d = nan; training stopped")
    assert len(first["seen"]) == len(second["seen"]) == NAN_STEP
