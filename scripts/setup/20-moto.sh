# Sourced by scripts/test.sh (also runnable on its own: `bash scripts/setup/20-moto.sh`).
# Installs the test venv at the repository root (.venv), from PyPI, pinned:
# moto's server (`moto[server]`, with boto3) for the AWS adapter tests, and the
# AWS CLI (`awscli`) for the batch-api conformance suite. awscli 1.46 brings no
# botocore pin of its own, so it resolves beside moto's boto3/botocore.
# Exports BATCHFAN_MOTO_SERVER and BATCHFAN_AWS_CLI. Never uses the machine's
# `aws`. Idempotent: pip runs only when a pinned version is not installed yet.
MOTO_VERSION=5.1.22
AWSCLI_VERSION=1.46.3
_moto_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_moto_venv="$_moto_root/.venv"
_moto_pinned() {
  "$_moto_venv/bin/python" -c "import importlib.metadata as m, sys
sys.exit(m.version('moto') != '$MOTO_VERSION' or m.version('awscli') != '$AWSCLI_VERSION')" 2>/dev/null
}
if ! _moto_pinned || [ ! -x "$_moto_venv/bin/moto_server" ] || [ ! -x "$_moto_venv/bin/aws" ]; then
  echo "installing moto[server]==$MOTO_VERSION and awscli==$AWSCLI_VERSION into $_moto_venv" >&2
  if [ ! -x "$_moto_venv/bin/python" ]; then
    python3 -m venv "$_moto_venv" || {
      echo "cannot create $_moto_venv: install python3-venv (apt-get install python3-venv)" >&2
      return 1 2>/dev/null || exit 1
    }
  fi
  "$_moto_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "awscli==$AWSCLI_VERSION" || {
    echo "pip could not install moto[server]==$MOTO_VERSION and awscli==$AWSCLI_VERSION" >&2
    return 1 2>/dev/null || exit 1
  }
fi
export BATCHFAN_MOTO_SERVER="$_moto_venv/bin/moto_server"
export BATCHFAN_AWS_CLI="$_moto_venv/bin/aws"
unset -f _moto_pinned
unset _moto_root _moto_venv
