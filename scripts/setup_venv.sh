#!/usr/bin/env bash
# Create or refresh .venv from requirements.lock; a no-op while the lock and pyproject are unchanged.
# Used by every make target, so `make run` and `make test` are the whole setup on a fresh machine.
#
# The installer is uv, at the version requirements.lock pins (`uv==...`), bootstrapped with pip
# into the new venv: it downloads and unpacks in parallel, 4x faster than pip on a fresh machine
# (docs/benchmarks.md). The same lock is installed either way. When uv cannot be installed or
# fails (e.g. a package mirror only pip is configured for: uv does not read pip.conf; give it
# UV_DEFAULT_INDEX), setup falls back to pip; GENBENCH_INSTALLER=pip skips uv altogether.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
venv=.venv
stamp=$venv/.setup-stamp
want=$( { cat requirements.lock pyproject.toml; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

installer=${GENBENCH_INSTALLER:-uv}
if [ "$installer" != uv ] && [ "$installer" != pip ]; then
  echo "error: GENBENCH_INSTALLER = '$installer': use uv (the default) or pip" >&2
  exit 2
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

# uv's commands target the venv explicitly; an activated other venv must not receive the packages.
uv_pip() { "$venv/bin/uv" pip "$1" --python "$venv/bin/python" "${@:2}"; }

# In a condition, so `set -e` is off here: every step's failure is returned by hand.
install_with_uv() {
  local pin
  pin=$(grep -E '^uv==' requirements.lock) || { echo "setup: requirements.lock pins no uv" >&2; return 1; }
  "$venv/bin/python" -m pip install --quiet "$pin" || return 1
  echo "setup: installing requirements.lock with $pin (first time: a minute or two)"
  # .pyc files now, as pip writes them: uv leaves them to the first import, which never writes
  # them under PYTHONDONTWRITEBYTECODE (set on CI machines), so every stage would start 2-3x slower.
  uv_pip install --quiet --compile-bytecode -r requirements.lock || return 1
  uv_pip install --quiet --no-deps --no-build-isolation -e . || return 1
}

if [ "$installer" = uv ] && ! install_with_uv; then
  echo "setup: uv could not install requirements.lock; falling back to pip" >&2
  installer=pip
fi
if [ "$installer" = uv ]; then
  uv_pip check
else
  echo "setup: installing requirements.lock with pip (first time: a few minutes)"
  "$venv/bin/python" -m pip install --quiet -r requirements.lock
  "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
  "$venv/bin/python" -m pip check
fi
echo "$want" > "$stamp"
echo "setup: $venv ready (installed with $installer)"
