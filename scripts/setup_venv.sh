#!/usr/bin/env bash
# Create or refresh .venv from requirements.lock; a no-op while the lock and pyproject are unchanged.
# Used by every make target, so `make run` and `make test` are the whole setup on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
venv=.venv
stamp=$venv/.setup-stamp
want=$( { cat requirements.lock pyproject.toml; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  echo "error: genbench needs Python 3.11; set PYTHON=/path/to/python3.11 (tried '$python')" >&2
  exit 2
fi
# A venv made by another Python, or a broken one, is rebuilt rather than patched.
if [ -e "$venv" ] && ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  echo "setup: $venv is broken or not Python 3.11; recreating it"
  rm -rf "$venv"
fi
[ -x "$venv/bin/python" ] || { echo "setup: creating $venv"; "$python" -m venv "$venv"; }
echo "setup: installing the pinned dependencies from requirements.lock (first time: a few minutes)"
"$venv/bin/python" -m pip install --quiet -r requirements.lock
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
"$venv/bin/python" -m pip check
echo "$want" > "$stamp"
echo "setup: $venv ready"
