#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs
# formatting, lints and every test. `.ci/run` calls this script.
#
# Set-up steps live in scripts/setup/*.sh (sourced in name order, before the
# build: each installs one tool and exports where it is, e.g. the moto server
# for the AWS tests, Chromium for the browser test). Checks that are not cargo
# tests live in scripts/checks/*.sh (run in name order after the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export ROOT

# Each step is printed with the time since the start, so that a slow step shows.
START=$(date +%s)
step() { printf '\n== [%4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

logs=$(mktemp -d)
# On an early exit (a failed step), stop what still runs in the background.
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$logs"' EXIT

# Check 45 cross-compiles the Lambdas for arm64 in release (~16 minutes of
# one core, cold): it shares nothing with the debug build, so it starts first
# and runs beside everything at the lowest CPU priority, taking only the CPU
# the rest leaves idle: the set-up's downloads, the debug build's serial tail
# (the batchfan library and its test binaries, one or two crates at a time),
# the tests' servers and waits. It has its own target directory: a second
# cargo on target/ would wait for the build's lock. No lints there (the
# wrapper, set below, is for the workspace's debug build).
background_check=scripts/checks/45-package-lambdas.sh
step "check, in the background: $background_check"
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS CARGO_TARGET_DIR="$ROOT/target/lambda-build" \
  nice -n 19 bash "$background_check" > "$logs/check.log" 2>&1 &
check_pid=$!

# The set-up steps install from PyPI, npm and apt (~2.5 minutes from a fresh
# clone, mostly downloads and unpacking): nothing the build needs, so they
# run beside it, and are sourced again after it (then each only checks what
# it installed and exports where it is).
setup_all() {
  local setup
  for setup in scripts/setup/*.sh; do
    [ -e "$setup" ] || continue
    echo "== set-up: $setup"
    # shellcheck source=/dev/null
    source "$setup"
  done
}
step "set-up, in the background beside the format check and the build"
setup_all > "$logs/setup.log" 2>&1 &
setup_pid=$!

step "format"
cargo fmt --all -- --check

# Lints in the same compile as the build: `cargo clippy` is `cargo check` with
# clippy-driver as the workspace crates' compiler wrapper. clippy-driver also
# generates code, so wrapping `cargo build` with it lints every workspace target
# (-D warnings) while building it, and the dependencies are compiled once, not
# a second time in check mode (~5 minutes cold on 2 cores). Exported, so the
# test runs below reuse this build: a different wrapper would rebuild the
# workspace crates.
clippy_driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver) \
  || { echo "clippy-driver is missing: rustup component add clippy" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

step "build and lints (workspace, debug, clippy -D warnings: the tests run the job binaries from target/debug)"
cargo build --workspace --all-targets --locked

step "set-up (started beside the build)"
setup_status=0
wait "$setup_pid" || setup_status=$?
cat "$logs/setup.log" >&2
[ "$setup_status" = 0 ] || { echo "set-up failed (exit $setup_status): see above" >&2; exit 1; }
setup_all >&2


# The checks that are not cargo tests, but 45 (started first, below).
# The wrapper stays set: a check that runs cargo (42) reuses the build as it
# is; without it, the workspace's crates would be compiled again (~7 min).
run_checks() {
  local check
  for check in scripts/checks/*.sh; do
    [ -e "$check" ] || continue
    [ "$check" = "$background_check" ] && continue
    step "check: $check"
    bash "$check"
  done
}

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  # The two tests that `terraform apply` and `destroy` against moto — the
  # deployed pipeline's (tests/deployed.rs, ~4 minutes) and batch-api's
  # (~2 minutes) — mostly wait: on the AWS provider's fixed delays, their
  # servers and Lambdas. They run from the start in a run of their own,
  # beside the rest, instead of each holding one of the rest's two slots.
  # (Moving more tests to their run, or lowering the rest's priority, made
  # the deployed pipeline's test, the longest, longer: 316 s and 280 s
  # against 298 s, and the whole command longer.)
  deployed='test(/^deployed::/)'
  deployed+=' | test(=batch_api::terraform::terraform_applies_replans_clean_and_destroys_batch_resources)'
  cargo nextest run --workspace --locked --no-fail-fast -E "$deployed" > "$logs/deployed.log" 2>&1 &
  deployed_pid=$!
  rest=0
  cargo nextest run --workspace --locked --no-fail-fast -E "not ($deployed)" || rest=$?
  cargo test --workspace --doc --locked || rest=$?
  # The checks (seconds each) run while the deployed pipeline's test ends.
  if [ "$rest" = 0 ]; then
    run_checks
  fi
  deployed_status=0
  wait "$deployed_pid" || deployed_status=$?
  step "tests: the deployed pipeline's (exit $deployed_status)"
  cat "$logs/deployed.log"
  [ "$rest" = 0 ] && [ "$deployed_status" = 0 ] || { echo "tests failed" >&2; exit 1; }
else
  cargo test --workspace --locked --no-fail-fast
  run_checks
fi
step "check: $background_check (started before the tests)"
check_status=0
wait "$check_pid" || check_status=$?
cat "$logs/check.log"
[ "$check_status" = 0 ] || { echo "$background_check failed (exit $check_status)" >&2; exit 1; }
step "all green"
