"""Files every layer writes the same way: atomic folders, sha256, JSON, and flat metric keys.

Ground floor: imports nothing from genbench, so data, evaluation, the report and pipelines/ can
all use it without depending on each other.
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def json_text(value: Any) -> str:
    """The one JSON layout of every file genbench writes: indented, sorted keys, final newline,
    so identical content gives an identical file (DVC and git see no change)."""
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def write_json(path: str | Path, value: Any) -> None:
    """Write `value` as JSON (json_text's layout), creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json_text(value))


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1} (with prefix "p": {"p.a.b": 1}); non-mapping leaves,
    lists included, are kept as they are."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


@contextlib.contextmanager
def atomic_dir(out: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside `out`; on success it replaces `out`, on error it is removed.

    A failed or interrupted stage therefore never leaves a half-written output folder; temp
    folders a killed writer left (`.<name>.tmp-*`) are removed first (one writer per `out`).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.tmp-*"):  # left by a killed writer of `out`
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would hide outputs from others
    old = out.parent / f".{out.name}.old-{tmp.name.rsplit('-', 1)[-1]}"
    if out.exists():
        out.rename(old)  # kept until the new folder is in place: no moment without an output
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def current_umask() -> int:
    """The process umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
