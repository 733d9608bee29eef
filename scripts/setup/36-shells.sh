# Sourced by scripts/test.sh: zsh and fish, whose parsers check the scripts of
# `batchfan completions zsh|fish` (tests/cli_terminal.rs; bash is there
# already), and util-linux `script`, which runs `batchfan run` in a pty there.
# shellcheck source=lib/apt.sh
source "${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/scripts/setup/lib/apt.sh"
bf_apt_require "zsh fish bsdutils" zsh fish script || return 1 2>/dev/null || exit 1
