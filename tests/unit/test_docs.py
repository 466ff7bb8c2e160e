"""The docs name only stages, params keys, modules and files that exist (scripts/check_docs.py).

The real README.md and docs/*.md must pass; planted stale names must fail, each named with its
file and line; names that do exist, written in every form the docs use, must pass.
"""

import importlib.util
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "check_docs.py"
_spec = importlib.util.spec_from_file_location("check_docs", SCRIPT)
check_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_docs)

# (Markdown, the stale token its one problem must name)
STALE = [
    ("Run `dvc repro train@gan` first.", "train@gan"),
    ("`python -m pipelines.run --targets train`", "train"),
    ("Per model: `evaluate@<family>`.", "evaluate@<family>"),
    ("Seeds: `train@gan-{0,9}`.", "train@gan-9"),
    ("Then the `fit_models` stage runs.", "fit_models"),
    ("```bash\ndvc repro -f preproces && dvc status\n```", "preproces"),
    ("`dvc repro dvc.yaml:evaluate_fake`", "evaluate_fake"),
    ("```text\nStage 'evaluate@vae-7' didn't change, skipping\n```", "evaluate@vae-7"),
    ("| stage | what |\n| --- | --- |\n| `train_gan` | trains |", "train_gan"),
    ("Set `evaluate.feature_space` to more spaces.", "evaluate.feature_space"),
    ("`dvc exp run -S gan.lr=1e-3`", "gan.lr"),
    ("```yaml\ngan:\n  z_dim: 32\nreport:\n  width: 3\n```", "report"),
    ("```yaml\nevaluate:\n  evaluator:\n    max_acc: 1\n```", "evaluate.evaluator.max_acc"),
    ("`evaluation.evaluator_dir.write_evaluator`", "evaluation.evaluator_dir.write_evaluator"),
    ("See `src/genbench/evaluator_dir.py`.", "src/genbench/evaluator_dir.py"),
    ("The size rules: `families/sizes.py`.", "families/sizes.py"),
    ("See [the layers](architecture_old.md#layers).", "architecture_old.md#layers"),
]  # fmt: skip

# Every form the docs use for names that exist: none of these is a problem.
CURRENT = """\
The `train@<family>-<seed>` stages (`train@gan-0`, `train@gan-{0,1,2}`, `evaluate@*`,
`train@ddpm-*`), the `evaluate` stages, the `compare` stage, `dvc repro --single-item <stage>`,
`dvc repro -f preprocess`, `dvc dag compare`, `python -m pipelines.run --targets train@gan-0`,
`dvc metrics diff --targets metrics/runs/gan-0.json`, an MLflow experiment `genbench@<folder>`.
Keys: `compare.budget.amount`, `evaluate.space_weights.clip-rn50`, `ddpm.*`, `seed`,
`dvc exp run -S gan.z_dim=32,64 -S ddpm.lr=1e-4`, `${compare.seeds}`; not keys:
`compare.json`, `eval/curve.fid`, `tags.genbench.executions`, `<family>.fid`, `val.<space>.fid`.
Modules: `compare.stats`, `data.download.download`, `genbench.core.store.load_split`,
`config.train.TrainParams`. Files: `src/genbench/families/<name>/params.py`,
`families/*/networks.py`, `stages/train.py`, [another page](other.md#a-section).

| stage | reads |
| --- | --- |
| `train@<family>-<seed>` (one per `compare.seeds` entry) | `gan` |

```yaml
evaluate:
  evaluator:
    min_accuracy: 0.5
  space_weights: {clip-vit-b-32: /data/ViT-B-32.pt}
gan:
  widths: [512, 256, 128]
```

```text
error: stage 'train@gan-0' failed; rerun `dvc repro -f preprocess` or `dvc checkout`
```
"""


def test_the_docs_name_only_what_exists():
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("text", "token"), STALE, ids=[token for _, token in STALE])
def test_a_stale_name_is_reported_with_its_line(tmp_path, capsys, text, token):
    doc = tmp_path / "doc.md"
    doc.write_text("# A page\n\nSome prose.\n\n" + text + "\n")
    assert check_docs.main([str(doc)]) == 1
    lines = capsys.readouterr().out.splitlines()
    last = token.split("@")[0].split(".")[-1]  # the part on the token's own line (YAML: a key)
    line = 5 + next(i for i, row in enumerate(text.splitlines()) if last in row)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{doc}:{line}: ") and f"`{token}`" in lines[0], lines


def test_names_that_exist_pass_in_every_form(tmp_path, capsys):
    doc = tmp_path / "page.md"
    doc.write_text(CURRENT)
    (tmp_path / "other.md").write_text("# A section\n")  # links are relative to the page
    assert check_docs.main([str(doc)]) == 0, capsys.readouterr().out


def test_stage_files_are_as_short_as_the_architecture_page_says():
    bound = re.search(r"each is under (\d+) lines", (ROOT / "docs/architecture.md").read_text())
    assert bound, "docs/architecture.md no longer states the stage files' bound"
    for stage_file in sorted((ROOT / "stages").glob("*.py")):
        lines = len(stage_file.read_text().splitlines())
        assert lines < int(bound.group(1)), f"{stage_file.name}: {lines} lines"
