"""Workers' threads and devices, the timeline, and the working tree's patch (a real git repo)."""

import subprocess

import pytest

from pipelines.parallel import Span, timeline_markdown
from pipelines.workers import Slot, describe, plan
from pipelines.workspace import Job, checkout_needed, lock_outs, working_tree_patch

GIT = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]


@pytest.mark.parametrize(
    ("workers", "cores", "gpus", "count", "threads", "devices"),
    [
        ("auto", 2, 0, 2, 1, [None, None]),  # one per core, one thread each
        ("auto", 16, 0, 16, 1, [None] * 16),
        ("auto", 16, 4, 4, 4, [0, 1, 2, 3]),  # one per device: 4 cores each, no more
        ("auto", 16, 1, 3, 5, [0, 0, 0]),  # three share a device (measured on an H200)
        ("auto", 64, 8, 16, 4, [0, 1, 2, 3, 4, 5, 6, 7] * 2),  # two each: 4 cores apiece
        ("auto", 2, 1, 1, 2, [0]),  # too few cores to share
        (3, 16, 0, 3, 5, [None] * 3),  # 16 // 3
        (8, 2, 0, 8, 1, [None] * 8),  # never below one thread
        (6, 12, 4, 6, 2, [0, 1, 2, 3, 0, 1]),  # more workers than devices: round-robin
        (1, 2, 0, 1, 2, [None]),
    ],
)
def test_threads_and_devices_per_worker(workers, cores, gpus, count, threads, devices):
    slots = plan(workers, cores, gpus)
    assert [s.index for s in slots] == list(range(count))
    assert {s.threads for s in slots} == {threads}
    assert [s.cuda_device for s in slots] == devices
    assert threads * count <= max(cores, count)  # never more threads than cores, if it can


def test_a_worker_sees_its_threads_and_only_its_device():
    assert Slot(1, 3, 2).env() == {
        "OMP_NUM_THREADS": "3",
        "MKL_NUM_THREADS": "3",
        "CUDA_VISIBLE_DEVICES": "2",
    }
    assert "CUDA_VISIBLE_DEVICES" not in Slot(0, 1).env()
    assert describe(plan("auto", 16, 2), 16) == (
        "4 worker(s) × 4 torch thread(s) (16 cores, CUDA devices [0, 1])"
    )


def test_zero_workers_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        plan(0, 2, 0)


def test_timeline_has_a_bar_per_stage_placed_in_time():
    spans = [
        Span("train@gan-0", "worker 0", 100.0, 110.0, "Completed"),
        Span("train@vae-0", "worker 1", 100.0, 120.0, "Completed"),
        Span("evaluate@gan-0", "worker 0", 110.0, 120.0, "Cached"),
        Span("download", "main", 90.0, 90.0, "Skipped"),  # no worker: not drawn
    ]
    text = timeline_markdown(spans, width=20)
    rows = [line for line in text.splitlines() if line.startswith("| worker ") and "`" in line]
    assert len(rows) == 3 and "download" not in text
    assert "20 s from the first start to the last end (3 stages on 2 worker(s))" in text
    bars = {row.split(" | ")[1]: row.split("`")[1] for row in rows}
    assert bars["train@gan-0"] == "█" * 10 + "·" * 10  # first half
    assert bars["evaluate@gan-0"] == "·" * 10 + "█" * 10  # second half
    assert bars["train@vae-0"] == "█" * 20
    assert timeline_markdown([Span("x", "main", 1, 1, "Skipped")]) == ""


def test_the_patch_carries_edits_and_new_files_but_not_dvc_lock(tmp_path):
    """Applied to a clean checkout of HEAD, the patch gives the working tree as it is (tracked
    edits, deletions, new files, binary files), dvc.lock excepted; the index is untouched."""
    repo, clone = tmp_path / "repo", tmp_path / "clone"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "kept.txt").write_text("one\n")
    (repo / "gone.txt").write_text("bye\n")
    (repo / "dvc.lock").write_text("old\n")
    (repo / ".gitignore").write_text("ignored/\n")
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "base"], cwd=repo, check=True)
    (repo / "kept.txt").write_text("two\n")
    (repo / "gone.txt").unlink()
    (repo / "new.bin").write_bytes(bytes(range(256)))
    (repo / "dvc.lock").write_text("new\n")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "out.txt").write_text("output\n")
    patch = working_tree_patch(repo)
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, text=True, check=True, capture_output=True
    ).stdout
    assert " M kept.txt" in status and "?? new.bin" in status  # nothing staged by the patch
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    subprocess.run(["git", "apply", "--binary", "-"], cwd=clone, input=patch.encode(), check=True)
    assert (clone / "kept.txt").read_text() == "two\n"
    assert not (clone / "gone.txt").exists()
    assert (clone / "new.bin").read_bytes() == bytes(range(256))
    assert (clone / "dvc.lock").read_text() == "old\n"  # each job carries its own
    assert not (clone / "ignored").exists()


LOCK = """schema: '2.0'
stages:
  preprocess:
    cmd: python stages/preprocess.py
    outs:
    - path: data/prepared
      hash: md5
      md5: aaa.dir
      size: 10
      nfiles: 2
  train@gan-0:
    cmd: python stages/train.py
    outs:
    - path: models/gan-0/weights.safetensors
      hash: md5
      md5: bbb
      size: 5
"""


def job_of(stage: str, upstream: list[str]) -> Job:
    return Job(stage=stage, upstream=upstream, commit="c", patch="", lock=LOCK)


def test_a_worktree_skips_the_checkout_only_when_it_holds_every_input_as_locked():
    """The outputs a worktree holds (from its earlier jobs) against the job's dvc.lock: the
    checkout runs for anything missing, changed or its own old outputs."""
    wanted = lock_outs(LOCK, ["preprocess", "train@gan-0", "evaluate@gan-0"])
    assert set(wanted) == {"preprocess", "train@gan-0"}  # evaluate@gan-0 never ran
    assert '"md5": "aaa.dir"' in wanted["preprocess"][0]
    evaluation = job_of("evaluate@gan-0", ["preprocess", "train@gan-0"])
    assert not checkout_needed(evaluation, wanted, dict(wanted))
    assert checkout_needed(evaluation, wanted, {"preprocess": wanted["preprocess"]})  # missing
    changed = {**wanted, **lock_outs(LOCK.replace("bbb", "ccc"), ["train@gan-0"])}
    assert changed != wanted and checkout_needed(evaluation, wanted, changed)  # another hash
    assert checkout_needed(job_of("train@gan-0", ["preprocess"]), wanted, wanted)  # own outputs
    assert checkout_needed(job_of("x", ["y"]), {}, {})  # an upstream dvc.lock does not list
    assert lock_outs(None, ["preprocess"]) == {}
