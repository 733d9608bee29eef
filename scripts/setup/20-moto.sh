# Sourced by scripts/test.sh (also runnable on its own: `bash scripts/setup/20-moto.sh`).
# Installs moto's server (PyPI `moto[server]`, pinned) into .venv at the
# repository root, and exports BATCHFAN_MOTO_SERVER for the AWS adapter tests.
# Idempotent: pip runs only when the pinned version is not installed yet.
MOTO_VERSION=5.1.22
_moto_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_moto_venv="$_moto_root/.venv"
if ! "$_moto_venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null \
  || [ ! -x "$_moto_venv/bin/moto_server" ]; then
  echo "installing moto[server]==$MOTO_VERSION into $_moto_venv" >&2
  if [ ! -x "$_moto_venv/bin/python" ]; then
    python3 -m venv "$_moto_venv" || {
      echo "cannot create $_moto_venv: install python3-venv (apt-get install python3-venv)" >&2
      return 1 2>/dev/null || exit 1
    }
  fi
  "$_moto_venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" || {
    echo "pip could not install moto[server]==$MOTO_VERSION" >&2
    return 1 2>/dev/null || exit 1
  }
fi
export BATCHFAN_MOTO_SERVER="$_moto_venv/bin/moto_server"
unset _moto_root _moto_venv
