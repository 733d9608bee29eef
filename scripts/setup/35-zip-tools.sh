# Sourced by scripts/test.sh: zip, unzip and strip, which scripts/package-lambdas.sh
# (--profile dev) and the Lambda Runtime API harness (tests/lambda_runtime.rs)
# use to pack and unpack the dispatchers' zips as Lambda takes them.
# Idempotent: apt-get runs only when one of them is missing.
if ! command -v zip >/dev/null 2>&1 || ! command -v unzip >/dev/null 2>&1 || ! command -v strip >/dev/null 2>&1; then
  echo "installing zip, unzip and binutils (Debian packages)" >&2
  _bf_sudo=""
  [ "$(id -u)" -eq 0 ] || _bf_sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $_bf_sudo apt-get install -y -qq --no-install-recommends zip unzip binutils >/dev/null \
    || { $_bf_sudo apt-get update -qq && $_bf_sudo apt-get install -y -qq --no-install-recommends zip unzip binutils >/dev/null; }
  unset _bf_sudo
fi
for _bf_tool in zip unzip strip; do
  command -v "$_bf_tool" >/dev/null 2>&1 || { echo "$_bf_tool is still missing after apt-get install" >&2; unset _bf_tool; return 1 2>/dev/null || exit 1; }
done
unset _bf_tool
