# Sourced by scripts/test.sh: zip, unzip and strip, which scripts/package-lambdas.sh
# (--profile dev) and the Lambda Runtime API harness (tests/lambda_runtime.rs)
# use to pack and unpack the dispatchers' zips as Lambda takes them.
# Idempotent: apt-get runs only when one of them is missing.
# shellcheck source=lib/apt.sh
source "${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/scripts/setup/lib/apt.sh"
bf_apt_require "zip unzip binutils" zip unzip strip || return 1 2>/dev/null || exit 1
