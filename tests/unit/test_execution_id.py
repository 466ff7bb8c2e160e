"""One execution id per `dvc repro`: the id must not change when the first stage writes its
outputs into git-tracked files (it did: the commit tag gained `-dirty` mid-run), and must change
with the code or the params."""

import subprocess

from genbench.tracking import pipeline_id


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_outputs_leave_the_execution_id_and_code_or_params_change_it(tmp_path, monkeypatch):
    monkeypatch.delenv("GENBENCH_PIPELINE_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src/code.py").write_text("x = 1\n")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/compare.json").write_text("{}\n")
    for name in ("dvc.yaml", "dvc.lock", "params.yaml"):
        (tmp_path / name).write_text(f"{name}: 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    first = pipeline_id("params.yaml")
    # what stages write: the lock file, metrics, a report (tracked or not)
    (tmp_path / "dvc.lock").write_text("dvc.lock: 2\n")
    (tmp_path / "metrics/compare.json").write_text('{"fid": 1}\n')
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/report.md").write_text("# report\n")
    assert pipeline_id("params.yaml") == first
    (tmp_path / "src/code.py").write_text("x = 2\n")  # an uncommitted code change
    changed = pipeline_id("params.yaml")
    assert changed != first
    (tmp_path / "params.yaml").write_text("params.yaml: 2\n")
    assert pipeline_id("params.yaml") not in (first, changed)
    monkeypatch.setenv("GENBENCH_PIPELINE_ID", "named")
    assert pipeline_id("params.yaml") == "named"
