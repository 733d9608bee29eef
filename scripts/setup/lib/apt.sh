# Sourced by set-up steps (scripts/setup/*.sh): `bf_apt_require "PACKAGES" CMD...`
# installs the Debian PACKAGES when one of the commands is missing (apt-get
# update only if the first install fails), then fails naming any command still
# missing. Idempotent; fast when everything is there.
bf_apt_require() {
  local packages="$1" sudo="" cmd
  shift
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 && continue
    echo "installing $packages (Debian packages)" >&2
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null \
      || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null; }
    break
  done
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || { echo "$cmd is still missing after apt-get install" >&2; return 1; }
  done
}
