"""`genbench diff`: what changed in every metrics file since a commit, judged per metric, outside
the DVC graph (the report no longer shows it)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dvc.repo import Repo

from genbench.core.errors import GenbenchError
from genbench.core.layout import REAL
from genbench.diff import changes, markdown, since
from genbench.evaluation.card import protocol_id
from tests.report_fixture import NAMES, SEEDS, write_outputs


def git(root: Path, *args: str) -> None:
    identity = ["-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def commit_outputs(root: Path, salt: int) -> dict:
    """Fixture outputs committed in a fresh git + DVC repository (DVC computes the diff)."""
    old = write_outputs(root, salt=salt)
    git(root, "init", "-q")
    Repo.init(root).close()
    git(root, "add", "metrics", ".dvc")
    git(root, "commit", "-q", "-m", "previous")
    return old


def runs(seeds=SEEDS) -> list[str]:
    return [f"{family}-{seed}" for family in NAMES for seed in seeds]


def rows_since(root: Path) -> list[dict]:
    _, found = since("HEAD", root / "metrics")
    return changes(found)


def test_change_since_the_previous_commit(tmp_path):
    old = commit_outputs(tmp_path, salt=0)
    new = write_outputs(tmp_path, salt=1)  # other numbers in the workspace
    commit, found = since("HEAD", tmp_path / "metrics")
    assert [f.name for f in found] == sorted(runs()) + [REAL]
    for result in found:  # DVC's diff: every key, old from the commit, new from the workspace
        if result.name != REAL:
            entry = result.diff["scores.fid"]
            fids = (old[result.name]["scores"]["fid"], new[result.name]["scores"]["fid"])
            assert (entry["old"], entry["new"]) == fids
    rows = changes(found)
    verdicts = {(row["path"], row["metric"]): row["verdict"] for row in rows}
    for name in runs():
        was, now = old[name]["scores"]["fid"], new[name]["scores"]["fid"]
        assert verdicts[(f"metrics/runs/{name}.json", "scores.fid")] == (
            "better" if now < was else "worse"
        )
        was, now = old[name]["scores"]["recall"], new[name]["scores"]["recall"]
        assert verdicts[(f"metrics/runs/{name}.json", "scores.recall")] == (
            "better" if now > was else "worse"
        )
    assert verdicts[("metrics/runs/gan-0.json", "cost.generator_parameters")] == "changed"
    change = {(row["path"], row["metric"]): row["change"] for row in rows}
    was, now = old["gan-0"]["scores"]["fid"], new["gan-0"]["scores"]["fid"]
    assert change[("metrics/runs/gan-0.json", "scores.fid")] == f"{now - was:+,.5g}"
    text = markdown("HEAD", commit, rows)
    assert text.startswith(f"## Change since HEAD ({commit})")
    assert (
        f"| metrics/runs/gan-0.json | scores.fid | {old['gan-0']['scores']['fid']:,.5g} |" in text
    )


def test_only_what_moved_is_listed_unchanged_timings_too(tmp_path):
    commit_outputs(tmp_path, salt=0)  # the workspace as committed, but one FID
    path = tmp_path / "metrics/runs/gan-0.json"
    metrics = json.loads(path.read_text())
    metrics["scores"]["fid"] += 1.0
    path.write_text(json.dumps(metrics))
    found = [(r["path"], r["metric"], r["verdict"]) for r in rows_since(tmp_path)]
    assert found == [("metrics/runs/gan-0.json", "scores.fid", "worse")]


def change_protocol(root: Path, name: str, **card_values) -> None:
    """Rewrite a run's card and the digest its metrics file carries, as an evaluation under
    another protocol would."""
    path = root / f"metrics/runs/{name}.protocol.json"
    card = json.loads(path.read_text()) | card_values
    path.write_text(json.dumps(card))
    metrics = json.loads((root / f"metrics/runs/{name}.json").read_text())
    metrics["protocol"]["id"] = protocol_id(card)
    (root / f"metrics/runs/{name}.json").write_text(json.dumps(metrics))


def test_changes_under_another_protocol_or_nan_are_not_called_better(tmp_path):
    commit_outputs(tmp_path, salt=0)
    write_outputs(tmp_path, salt=1)
    change_protocol(tmp_path, "ddpm-0", num_samples=500)  # fewer samples
    change_protocol(tmp_path, "vae-1", kid={"subset_size": 180})  # another KID rule
    metrics = json.loads((tmp_path / "metrics/runs/gan-0.json").read_text())
    metrics["scores"]["is_mean"] = float("nan")
    (tmp_path / "metrics/runs/gan-0.json").write_text(json.dumps(metrics))
    rows = rows_since(tmp_path)
    found = {(r["path"], r["metric"]): r["verdict"] for r in rows}
    # one row per file made under another protocol, saying which part changed
    apart = {
        r["path"]: (r["metric"], r["change"]) for r in rows if r["verdict"] == "not comparable"
    }
    assert set(apart) == {"metrics/runs/ddpm-0.json", "metrics/runs/vae-1.json"}
    assert apart["metrics/runs/ddpm-0.json"][0].endswith(" quality numbers")
    assert apart["metrics/runs/ddpm-0.json"][1] == "protocol changed: num_samples"
    assert apart["metrics/runs/vae-1.json"][1] == "protocol changed: kid"
    assert ("metrics/runs/ddpm-0.json", "scores.fid") not in found
    assert found[("metrics/runs/ddpm-0.json", "cost.generator_parameters")] == "changed"
    # a measured duration moves with the machine's load: never better or worse
    assert found[("metrics/runs/vae-0.json", "cost.sampling_ms_per_image")] == "timing"
    assert found[("metrics/runs/gan-0.json", "scores.is_mean")] == "invalid"
    assert found[("metrics/runs/vae-0.json", "scores.fid")] in ("better", "worse")
    assert not any(metric == "protocol.id" for _, metric in found)


def test_metrics_from_before_the_protocol_digest_are_judged_by_the_committed_card(tmp_path):
    commit_outputs(tmp_path, salt=0)  # then: no digest in the metrics files
    for name in ("gan-0", "vae-0"):
        path = tmp_path / f"metrics/runs/{name}.json"
        metrics = json.loads(path.read_text())
        del metrics["protocol"]
        path.write_text(json.dumps(metrics))
    git(tmp_path, "commit", "-qam", "no digest")
    write_outputs(tmp_path, salt=1)
    path = tmp_path / "metrics/runs/gan-0.protocol.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"num_samples": 500}))
    rows = rows_since(tmp_path)
    found = {(r["path"], r["metric"]): r["verdict"] for r in rows}
    apart = [(r["path"], r["change"]) for r in rows if r["verdict"] == "not comparable"]
    assert apart == [("metrics/runs/gan-0.json", "protocol changed: num_samples")]
    assert found[("metrics/runs/vae-0.json", "scores.fid")] in ("better", "worse")


def test_the_command_prints_the_table_and_refuses_a_bad_revision(tmp_path):
    commit_outputs(tmp_path, salt=0)
    write_outputs(tmp_path, salt=1)
    cmd = [str(Path(sys.executable).parent / "genbench"), "diff"]  # the console script
    shown = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("## Change since HEAD (")
    assert "| metrics/runs/gan-0.json | scores.fid |" in shown.stdout
    as_json = subprocess.run([*cmd, "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert json.loads(as_json.stdout)["changes"] == rows_since(tmp_path)
    bad = subprocess.run([*cmd, "nope~1"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "error: 'nope~1' is not a commit here; pass a revision such as HEAD~1"
    ]


def test_outside_git_it_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # not the checkout's
    write_outputs(tmp_path)
    with pytest.raises(GenbenchError, match="not in a git repository"):
        since("HEAD", tmp_path / "metrics")
