"""`genbench diff`: what changed in every metrics file since a git revision (HEAD unless told),
with better or worse per metric from the metric registry. It stands outside the DVC graph (the
report stage's output depends on its declared inputs alone); the Prefect flow attaches its table
to each flow run, and the README shows it.

DVC computes the diff (`dvc metrics diff <rev> --all --json`, run as a command: the package
never imports DVC); this module judges each change. A quality number made under another
protocol (the digest `protocol.id` every metrics file carries, from the card's COMPARABLE part)
is "not comparable", never better or worse; a timing is a "timing", never better or worse.
"""

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbench.core.errors import GenbenchError
from genbench.core.layout import CARD_SUFFIX, COMPARABLE, REAL, RUNS, card_file, metrics_file
from genbench.core.metric_registry import HIGHER, LOWER, NEAR_REAL, TIMINGS, better_direction
from genbench.core.system import git


@dataclass(frozen=True)
class Found:
    """One result's change: DVC's diff of its metrics file (flattened key -> {"old", "new"(,
    "diff")}), its card now and the card committed at the revision (None: not in git)."""

    name: str
    diff: dict[str, dict]
    card: dict
    old_card: dict | None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite(value: Any) -> bool:
    return _number(value) and math.isfinite(value)


def result_names(metrics: Path) -> list[str]:
    """Every result with a metrics file under metrics/: the runs in name order, then real."""
    runs = sorted(
        p.name.removesuffix(".json")
        for p in (metrics / RUNS).glob("*.json")
        if not p.name.endswith(CARD_SUFFIX)
    )
    return [*runs, REAL] if (metrics / metrics_file(REAL)).exists() else runs


def dvc_metrics_diff(rev: str, files: list[Path], root: Path) -> dict[str, dict[str, dict]]:
    """`dvc metrics diff <rev> --all --json` over `files` (paths relative to `root`)."""
    cmd = [sys.executable, "-m", "dvc", "metrics", "diff", rev, "--all", "--json", "--targets"]
    done = subprocess.run(
        [*cmd, *map(str, files)], cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise GenbenchError(f"dvc metrics diff {rev} failed: {last}")
    return json.loads(done.stdout or "{}")


def since(rev: str, metrics: Path) -> tuple[str, list[Found]]:
    """(the revision's short sha, each result's change since it)."""
    metrics = Path(metrics).resolve()
    if not metrics.is_dir():
        raise GenbenchError(f"{metrics} is not a folder; pass the metrics folder (--metrics)")
    try:
        top = git("rev-parse", "--show-toplevel", cwd=metrics)
        found = git("rev-parse", "--verify", "--quiet", "--short", f"{rev}^{{commit}}", cwd=metrics)
    except FileNotFoundError:
        raise GenbenchError("git is not installed; genbench diff compares git revisions") from None
    if top.returncode != 0:
        raise GenbenchError(f"{metrics} is not in a git repository; genbench diff needs one")
    if found.returncode != 0:
        raise GenbenchError(f"{rev!r} is not a commit here; pass a revision such as HEAD~1")
    root = Path(top.stdout.strip())
    names = result_names(metrics)
    files = {name: (metrics / metrics_file(name)).relative_to(root) for name in names}
    diff = dvc_metrics_diff(rev, list(files.values()), root)
    results = []
    for name in names:
        card_path = metrics / card_file(name)
        card = json.loads(card_path.read_text()) if card_path.exists() else {}
        shown = git("show", f"{rev}:./{card_file(name)}", cwd=metrics)
        try:
            old_card = json.loads(shown.stdout) if shown.returncode == 0 else None
        except json.JSONDecodeError:
            old_card = None  # a broken card: judged as a missing one
        results.append(Found(name, diff.get(files[name].as_posix(), {}), card, old_card))
    return found.stdout.strip(), results


def markdown(rev: str, commit: str, rows: list[dict[str, Any]]) -> str:
    """The change table as Markdown (the CLI prints it; the flow attaches it)."""
    head = f"## Change since {rev} ({commit})\n\n"
    if not rows:
        return head + f"No metric changed since {commit}.\n"
    lines = [
        "What `dvc metrics diff` shows, with better or worse per metric (timing: a measured "
        "duration, which moves with the machine's load, so never called better or worse).",
        "",
        f"| file | metric | {commit} | now | change | |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        cells = [row[k] for k in ("path", "metric", "old", "new", "change", "verdict")]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return head + "\n".join(lines) + "\n"


def verdict(key: str, old: float, new: float, current: dict, previous: dict) -> str:
    """better / worse / changed (no direction), for one metric key like `scores.fid` whose
    value moved."""
    direction = better_direction(key.rsplit(".", 1)[-1])
    if direction == NEAR_REAL and key == "ssim.diversity":
        old_gap = abs(old - previous.get("ssim.diversity_real", old))
        new_gap = abs(new - current.get("ssim.diversity_real", new))
        return "better" if new_gap < old_gap else "worse" if new_gap > old_gap else "changed"
    if direction in (LOWER, HIGHER):
        return "better" if (new < old) == (direction == LOWER) else "worse"
    return "changed"


PROTOCOL_ID = "protocol.id"  # the digest of the card's COMPARABLE part, in every metrics file


def comparable(current: dict, previous: dict, card: dict, old_card: dict | None) -> bool:
    """Same extractor weights, reference set, sample count, sampler and metric rules: by the
    digest both metrics files carry, else (files from before it) by the committed card; with
    neither, assume so."""
    if PROTOCOL_ID in current and PROTOCOL_ID in previous:
        return current[PROTOCOL_ID] == previous[PROTOCOL_ID]
    return old_card is None or all(card.get(key) == old_card.get(key) for key in COMPARABLE)


def change_row(name: str, key: str, entry: dict, mark: str) -> dict:
    """One row of the change table from DVC's diff entry for a key."""

    def text(value: Any) -> str:
        return f"{value:,.5g}" if _number(value) else ""

    both = finite(entry.get("old")) and finite(entry.get("new"))
    return {
        "path": f"metrics/{metrics_file(name)}",
        "metric": key,
        "old": text(entry.get("old")),
        "new": text(entry.get("new")),
        "change": f"{entry['diff']:+,.5g}" if both and "diff" in entry else "",
        "verdict": mark,
    }


def _side(diff: dict[str, dict], which: str) -> dict[str, float]:
    """One side ("old" or "new") of DVC's diff of a metrics file: its numeric keys."""
    return {k: float(e[which]) for k, e in diff.items() if _number(e.get(which))}


def changes(found: list["Found"]) -> list[dict[str, Any]]:
    """`dvc metrics diff <rev>` of every result, with better/worse per metric; changed rows
    only.

    Quality numbers made under another protocol (extractor weights, reference set, sample
    count, sampler) are marked "not comparable", one row per file saying what changed; NaN or
    inf on either side "invalid".
    """
    rows = []
    for result in found:
        diff = result.diff
        previous, current = _side(diff, "old"), _side(diff, "new")
        same = comparable(current, previous, result.card, result.old_card)
        apart = []  # quality numbers made under another protocol: one row says why
        for key in sorted((set(current) | set(previous)) - {PROTOCOL_ID}):
            old, new = previous.get(key), current.get(key)
            if old is None or new is None:
                mark = "new" if old is None else "removed"
            elif not (finite(old) and finite(new)):
                mark = "same" if repr(old) == repr(new) else "invalid"  # NaN != NaN
            elif math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12):
                mark = "same"
            elif not same and not key.startswith("cost."):
                apart.append(key)
                continue
            elif key.rsplit(".", 1)[-1] in TIMINGS:
                mark = "timing"
            else:
                mark = verdict(key, old, new, current, previous)
            if mark != "same":
                rows.append(change_row(result.name, key, diff[key], mark))
        if apart:
            why = protocol_change(result.card, result.old_card)
            rows.append(
                {
                    "path": f"metrics/{metrics_file(result.name)}",
                    "metric": f"{len(apart)} quality numbers",
                    "old": "",
                    "new": "",
                    "change": f"protocol changed: {why}",
                    "verdict": "not comparable",
                }
            )
    return rows


def protocol_change(card: dict, old_card: dict | None) -> str:
    """Which of the protocol card's comparable parts changed (`kid, prdc`), or why that
    cannot be told (the previous card is not in the commit's cache)."""
    if old_card is None:
        return "the protocol id differs (the previous card is not at hand to say how)"
    changed = [key for key in COMPARABLE if card.get(key) != old_card.get(key)]
    return ", ".join(changed) if changed else "the protocol id differs"
