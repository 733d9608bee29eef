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

for setup in scripts/setup/*.sh; do
  [ -e "$setup" ] || continue
  step "set-up: $setup"
  # shellcheck source=/dev/null
  source "$setup"
done

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

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi

# The checks build other targets (the arm64 release Lambdas): no lints there.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
for check in scripts/checks/*.sh; do
  [ -e "$check" ] || continue
  step "check: $check"
  bash "$check"
done
step "all green"
