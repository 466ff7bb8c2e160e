"""Workspaces where a stage runs beside others: a git worktree here, or a Dask worker's clone.

No prefect here. DVC keeps one workspace's state (dvc.lock, outputs) per checkout, so stages
that run at the same time each get their own checkout at the main workspace's commit, with its
uncommitted changes applied (a patch) and the main workspace's dvc.lock of the moment:

- **here** (`git worktree`), sharing the main workspace's DVC cache: what a stage writes lands
  in the shared cache and its run cache, and the main workspace then restores it (`Cached`).
  Its checkpoints/ and .cache/ are links to the main workspace's, so a retried training
  resumes, and MLflow logs into the main workspace's store.
- **on a Dask worker** (`orchestration.cluster`), in that worker's own clone of the repository
  (GENBENCH_WORKER_CLONE, else the directory it was started in), with its own DVC cache: the
  stage's inputs come from the DVC remote (`dvc pull`), its outputs and run cache go back to it
  (`dvc push --run-cache`), and the main workspace fetches the run cache and restores.

Only the main workspace writes its dvc.lock, so there is never anything to merge.
"""

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from genbench.core.errors import GenbenchError
from pipelines.repro import DVC, Outcome, repro_stage, run_dvc

LOCK = "dvc.lock"
WORKTREES = Path(".dvc/tmp/workers")  # inside DVC's own ignored temp folder of the main workspace
SHARED = ("checkpoints", ".cache")  # a worktree's links to the main workspace's folders
CLONE_ENV = "GENBENCH_WORKER_CLONE"  # a Dask worker's clone of the repository
# in a worktree: the stages whose outputs it holds, as the dvc.lock of its jobs listed them
HELD = Path(".dvc/tmp/genbench-held-outputs.json")
PROJECT_ENV = "GENBENCH_PROJECT_ROOT"  # where MLflow artifacts of a worktree's stage belong


class WorkspaceError(GenbenchError):
    """A worktree or clone cannot be made ready (git or DVC refused)."""


def git(args: list[str], cwd: Path, stdin: str | None = None) -> str:
    """A git command's stdout; WorkspaceError with its message when it fails."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise WorkspaceError(f"git {' '.join(args[:2])} in {cwd} failed: {reason[-1]}")
    return result.stdout


def working_tree_patch(root: Path) -> str:
    """The main workspace's uncommitted changes against HEAD as one binary patch: tracked edits
    and new files git does not ignore, dvc.lock left out (each job carries its own). Made with
    a temporary index, so the user's staging area is untouched."""
    # git's own path for it: .git is a file, not a folder, in a worktree or a submodule
    index = root / git(["rev-parse", "--git-path", "genbench-patch-index"], root).strip()
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    try:
        for args in (["read-tree", "HEAD"], ["add", "-A", "--", ".", f":(exclude){LOCK}"]):
            subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
        return subprocess.run(
            ["git", "diff", "--cached", "--binary", "HEAD"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError as err:
        raise WorkspaceError(f"git {err.cmd[1]} in {root} failed: {err.stderr.strip()}") from None
    finally:
        index.unlink(missing_ok=True)


@dataclass(frozen=True)
class Job:
    """What a worker needs to run one stage: everything as values, so it travels to Dask."""

    stage: str
    upstream: list[str]  # the stages whose outputs it reads
    commit: str
    patch: str
    lock: str | None  # the main workspace's dvc.lock when the job was made (None: none yet)
    uncached: dict[str, bytes] = field(default_factory=dict)  # upstream `cache: false` files
    outputs: list[str] = field(default_factory=list)  # its own `cache: false` outputs
    env: dict[str, str] = field(default_factory=dict)  # threads, device, MLflow, execution


def uncached_files(root: Path, paths: list[str]) -> dict[str, bytes]:
    """The `cache: false` outputs of upstream stages, file by file: `dvc checkout` and
    `dvc pull` do not restore them, so the job carries them."""
    files: dict[str, bytes] = {}
    for path in paths:
        full = root / path
        found = sorted(p for p in full.rglob("*") if p.is_file()) if full.is_dir() else [full]
        for item in found:
            if item.is_file():
                files[item.relative_to(root).as_posix()] = item.read_bytes()
    return files


def write_files(root: Path, files: dict[str, bytes], replace: list[str] = ()) -> None:
    """Write files under root, each whole or not at all (a temporary file renamed into place);
    the folders in `replace` are emptied first, so no file of an older output stays."""
    for folder in replace:
        if (root / folder).is_dir():
            shutil.rmtree(root / folder)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(content)
        os.replace(partial, path)


def store_in_cache(root: Path, files: dict[str, bytes]) -> None:
    """Put files into root's DVC cache as objects (DVC 3's documented layout,
    files/md5/<2>/<30>), as a worker's DVC did in its own cache: DVC's run cache restores a
    stage only when every output's object is in the cache, its `cache: false` metrics files
    included, and `dvc push --run-cache` does not send those."""
    cache = _cache_dir(root) / "files" / "md5"
    for content in files.values():
        digest = hashlib.md5(content).hexdigest()
        path = cache / digest[:2] / digest[2:]
        if not path.exists():
            write_files(path.parent, {path.name: content})
            path.chmod(0o444)


def _write_inputs(workspace: Path, job: Job) -> None:
    if job.lock is None:
        (workspace / LOCK).unlink(missing_ok=True)
    else:
        (workspace / LOCK).write_text(job.lock)
    write_files(workspace, job.uncached)


def _apply(workspace: Path, patch: str) -> None:
    if patch.strip():
        git(["apply", "--binary", "--whitespace=nowarn", "-"], workspace, stdin=patch)


# --- here: git worktrees sharing the main workspace's cache -------------------------------------


def make_worktree(root: Path, index: int, commit: str, patch: str) -> Path:
    """A fresh worktree of root at commit, with the patch applied, root's DVC cache as its cache,
    and links to root's checkpoints/ and .cache/."""
    path = root / WORKTREES / str(index)
    remove_worktree(root, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    git(["worktree", "add", "--detach", "--force", str(path), commit], root)
    _apply(path, patch)
    cache = _cache_dir(root)
    subprocess.run([*DVC[:-1], "config", "--local", "cache.dir", str(cache)], cwd=path, check=True)
    for name in SHARED:
        (root / name).mkdir(exist_ok=True)
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        target.symlink_to(root / name, target_is_directory=True)
    return path


def _cache_dir(root: Path) -> Path:
    """root's DVC cache folder (its cache.dir, else .dvc/cache)."""
    result = subprocess.run(
        [*DVC[:-1], "cache", "dir"], cwd=root, capture_output=True, text=True, check=False
    )
    found = result.stdout.strip()
    return Path(found) if result.returncode == 0 and found else root / ".dvc" / "cache"


def remove_worktree(root: Path, path: Path) -> None:
    """Remove a worktree made by make_worktree, whatever state it is in."""
    if path.exists():
        subprocess.run(
            ["git", "worktree", "remove", "--force", "--force", str(path)],
            cwd=root,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(path, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True, check=False)


def remove_all_worktrees(root: Path) -> None:
    """Every worktree under .dvc/tmp/workers, including those an interrupted run left."""
    folder = root / WORKTREES
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        remove_worktree(root, path)
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True, check=False)


def run_in_worktree(
    root: Path, workspace: Path, job: Job, env: dict, on_line: Callable[[str], None]
) -> Outcome:
    """Run job's stage in a worktree: upstream outputs checked out from the shared cache, then
    `dvc repro --single-item`. Its outputs and run-cache entry land in the shared cache.

    The checkout is left out when this worktree already holds every upstream output as the
    job's dvc.lock lists it (an earlier job here checked it out or made it) and the stage has
    no old outputs to bring back: one DVC process less per stage (about 0.6 s)."""
    _write_inputs(workspace, job)
    env = {**env, **job.env, PROJECT_ENV: str(root)}
    # its own old outputs too: without them DVC would restore or rerun a stage that has not
    # changed, rather than say so
    targets = [*job.upstream, job.stage]
    wanted = lock_outs(job.lock, targets)
    held = _held(workspace)
    if checkout_needed(job, wanted, held):
        _hold(workspace, {})  # unknown while DVC changes files
        run_dvc(["checkout", "--quiet", "--allow-missing", *targets], workspace, env, on_line)
        held = dict(wanted)
    else:
        on_line("upstream outputs already in this worktree as dvc.lock lists them: no checkout")
    held.pop(job.stage, None)  # its outputs change now
    _hold(workspace, held)
    outcome = repro_stage(workspace, job.stage, env, on_line)
    _hold(workspace, held | lock_outs((workspace / LOCK).read_text(), [job.stage]))
    return outcome


def checkout_needed(job: Job, wanted: dict[str, list[str]], held: dict[str, list[str]]) -> bool:
    """Whether `dvc checkout` must run before job's stage: an upstream output the worktree does
    not hold as `wanted` (lock_outs of the job's dvc.lock) lists it, or old outputs of the stage
    itself to bring back."""
    if job.stage in wanted:
        return True
    return any(up not in wanted or held.get(up) != wanted[up] for up in job.upstream)


def lock_outs(lock: str | None, stages: list[str]) -> dict[str, list[str]]:
    """Each of these stages' outputs as a dvc.lock text lists them (path, hash, size), for the
    stages it has."""
    entries = ((yaml.safe_load(lock) or {}).get("stages") or {}) if lock else {}
    return {
        name: sorted(json.dumps(out, sort_keys=True) for out in entries[name].get("outs") or [])
        for name in stages
        if name in entries
    }


def _held(workspace: Path) -> dict[str, list[str]]:
    """The stages whose outputs this worktree holds, as lock_outs gives them."""
    try:
        return json.loads((workspace / HELD).read_text())
    except (OSError, ValueError):
        return {}


def _hold(workspace: Path, held: dict[str, list[str]]) -> None:
    write_files(workspace, {HELD.as_posix(): json.dumps(held).encode()})


# --- on a Dask worker: its own clone, the DVC remote between -------------------------------------


def worker_clone() -> Path:
    """This Dask worker's clone: GENBENCH_WORKER_CLONE, else the directory it started in."""
    path = Path(os.environ.get(CLONE_ENV) or os.getcwd()).resolve()
    if not (path / ".git").exists() or not (path / "dvc.yaml").exists():
        raise WorkspaceError(
            f"{path} is not a clone of the project (no .git or dvc.yaml); start each Dask worker "
            f"in its own clone or set {CLONE_ENV} (docs/orchestration.md)"
        )
    return path


def run_in_clone(clone: Path, job: Job, env: dict, on_line: Callable[[str], None]) -> Outcome:
    """Run job's stage in a worker's clone: the commit fetched from its origin, the patch
    applied, upstream outputs pulled from the DVC remote; the outputs and the run cache pushed
    back."""
    try:
        git(["cat-file", "-e", f"{job.commit}^{{commit}}"], clone)
    except WorkspaceError:
        git(["fetch", "--quiet", "origin"], clone)
        try:
            git(["cat-file", "-e", f"{job.commit}^{{commit}}"], clone)
        except WorkspaceError:
            raise WorkspaceError(
                f"commit {job.commit[:12]} is not in {clone}'s origin: push it first"
            ) from None
    git(["reset", "--quiet", "--hard", job.commit], clone)
    git(["clean", "--quiet", "-fd"], clone)  # last job's patch; ignored outputs stay
    _apply(clone, job.patch)
    _write_inputs(clone, job)
    env = {**env, **job.env}
    targets = [*job.upstream, job.stage]  # its own old outputs too, as in run_in_worktree
    run_dvc(["pull", "--quiet", "--allow-missing", *targets], clone, env, on_line)
    outcome = repro_stage(clone, job.stage, env, on_line)
    if outcome is not Outcome.UP_TO_DATE:
        run_dvc(["push", "--quiet", "--run-cache", job.stage], clone, env, on_line)
    return outcome
