#!/usr/bin/env bash
# Builds the dispatcher Lambdas (dispatchers/: one binary, batchfan-lambda,
# for trigger, submit and alert; each function's handler names the one it
# runs) into the zips terraform/modules/pipeline deploys:
# $OUT/{trigger,submit,alert}/bootstrap.zip, the binary as `bootstrap` in each
# (OUT defaults to target/lambda in the repository, the module's default
# lambda_package_dir), then checks each
# zip as Lambda will take it (scripts/check-lambda-zips.py): `bootstrap` at the
# root, executable, an ELF of the architecture, stripped, within Lambda's sizes.
#
#   scripts/package-lambdas.sh [--arm64 | --x86-64] [--profile release|dev]
#                              [--no-build] [--function NAME]... [--out DIR]
#
# --arm64 (the default) or --x86-64 must match the module's lambda_architecture.
# --profile release (the default): `cargo lambda build --release`, cross-built;
# cargo-lambda and ziglang (its cross linker) come from PyPI into a virtualenv
# (BATCHFAN_LAMBDA_VENV, default .tools/lambda-venv), installed when missing.
# --profile dev: the binaries of the workspace's debug build (target/debug, or
# $CARGO_TARGET_DIR/debug), for this machine's architecture only, stripped and
# zipped the same way: what the tests run under their Lambda Runtime API
# (tests/lambda_runtime.rs). `cargo build` makes them first unless --no-build.
# --function NAME (repeatable) packages only those functions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.13.0
FUNCTIONS=(trigger submit alert)
PACKAGE=batchfan-dispatchers
BINARY=batchfan-lambda

arch=--arm64
target=aarch64-unknown-linux-gnu
profile=release
build_first=yes
only=()
out="$ROOT/target/lambda"
while [ $# -gt 0 ]; do
  case "$1" in
    --arm64) arch=--arm64; target=aarch64-unknown-linux-gnu ;;
    --x86-64) arch=--x86-64; target=x86_64-unknown-linux-gnu ;;
    --profile) profile=${2:?--profile needs release or dev}; shift ;;
    --no-build) build_first=no ;;
    --function) only+=("${2:?--function needs a name}"); shift ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "package-lambdas: unknown argument $1: use --arm64, --x86-64, --profile release|dev, --no-build, --function NAME or --out DIR" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "package-lambdas: $*" >&2; exit 1; }

case "$profile" in
  release|dev) ;;
  *) die "unknown profile $profile: use --profile release (cargo lambda, cross-built) or --profile dev (this machine's debug build)" ;;
esac
if [ ${#only[@]} -gt 0 ]; then
  for f in "${only[@]}"; do
    [[ " ${FUNCTIONS[*]} " == *" $f "* ]] || die "unknown function $f: the functions are ${FUNCTIONS[*]}"
  done
  FUNCTIONS=("${only[@]}")
fi

# The crate must be there before anything is installed or built.
manifest=dispatchers/Cargo.toml
[ -f "$manifest" ] || die "the dispatchers crate is missing ($manifest, package $PACKAGE with binary $BINARY)"
grep -Eq "^name *= *\"$PACKAGE\"" "$manifest" || die "$manifest does not define package $PACKAGE"
grep -Eq "^name *= *\"$BINARY\"" "$manifest" || die "$manifest has no binary $BINARY (a [[bin]] named $BINARY)"

# The one binary, as `bootstrap`, zipped into each function's directory the
# way cargo lambda zips it: $out/NAME/bootstrap.zip holding one executable.
zip_for_each_function() {
  local executable=$1 work f
  command -v zip >/dev/null || die "zip is missing: install it (apt-get install zip)"
  work=$(mktemp -d)
  cp "$executable" "$work/bootstrap"
  chmod 755 "$work/bootstrap"
  for f in "${FUNCTIONS[@]}"; do
    mkdir -p "$out/$f"
    rm -f "$out/$f/bootstrap.zip"
    (cd "$work" && zip -q -X -1 "$out/$f/bootstrap.zip" bootstrap)
  done
  rm -rf "$work"
}

# cargo lambda build --release, cross-built for $target (the deployed zips).
package_release() {
  venv=${BATCHFAN_LAMBDA_VENV:-$ROOT/.tools/lambda-venv}
  installed=$("$venv/bin/cargo-lambda" --version 2>/dev/null || true)
  if [[ "$installed" != *" $CARGO_LAMBDA_VERSION "* ]] || ! "$venv/bin/python" -c "import ziglang" 2>/dev/null; then
    echo "package-lambdas: installing cargo-lambda $CARGO_LAMBDA_VERSION and ziglang $ZIGLANG_VERSION into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
  fi
  # cargo-lambda finds zig as `python3 -m ziglang` of the python on PATH.
  export PATH="$venv/bin:$PATH"
  rustup target add "$target" >/dev/null 2>&1 || true

  # No debug info and stripped symbols: the release profile keeps line tables
  # for the job binaries' backtraces, which made each bootstrap ~100 MB.
  # --disable-optimizations: the workspace's release profile as it is, without
  # the three settings cargo lambda adds by default. panic = "abort" would
  # defeat lambda_runtime's CatchPanicService (a panicking invocation is
  # reported as that invocation's error and the process serves the next one;
  # aborted, the next one is a cold start), and the tests run the dispatchers
  # with unwinding. Thin LTO was 7 CPU-minutes of the build (the last crate,
  # alone on one core) for handlers that wait on AWS calls; target-cpu=
  # neoverse-n1 only narrows the binary to Graviton 2 and later.
  local built="$out/.build"
  build() {
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo lambda build --release --disable-optimizations "$arch" --lambda-dir "$built" \
      --locked -p "$PACKAGE" --bin "$BINARY"
  }
  # A link can fail transiently (zig's first-use cache, a loaded machine); the
  # retry only relinks, and a real error fails again.
  if ! build; then
    echo "package-lambdas: the build failed; retrying once" >&2
    build
  fi
  [ -x "$built/$BINARY/bootstrap" ] || die "cargo lambda did not produce $built/$BINARY/bootstrap"
  zip_for_each_function "$built/$BINARY/bootstrap"
  rm -rf "$built"
}

# The debug build's binary for this machine, stripped, laid out as the
# release build is.
package_dev() {
  local host
  host=$(uname -m)
  [ "$host" = "${target%%-*}" ] || die "--profile dev packages this machine's build ($host), not ${target%%-*}: use --$( [ "$host" = x86_64 ] && echo x86-64 || echo arm64 ) or --profile release"
  command -v strip >/dev/null || die "strip is missing: install binutils"
  if [ "$build_first" = yes ]; then
    # --workspace --all-targets: the features the test build resolves, so its artifacts are reused.
    cargo build --locked --workspace --all-targets
  fi
  local bin_dir=${CARGO_TARGET_DIR:-$ROOT/target}/debug work
  [ -x "$bin_dir/$BINARY" ] || die "$bin_dir/$BINARY is missing: build it first (cargo build --workspace, or drop --no-build)"
  work=$(mktemp -d)
  # Lambda's zip limit is 50 MB: the debug build keeps the workspace's debug info.
  # (.debug_gdb_scripts: the pretty-printer hook rustc adds to debug builds.)
  strip --strip-all --remove-section=.debug_gdb_scripts -o "$work/bootstrap" "$bin_dir/$BINARY"
  zip_for_each_function "$work/bootstrap"
  rm -rf "$work"
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
start=$(date +%s)
"package_$profile"
echo "package-lambdas: built in $(( $(date +%s) - start ))s" >&2

zips=()
for f in "${FUNCTIONS[@]}"; do
  [ -f "$out/$f/bootstrap.zip" ] || die "the build did not produce $out/$f/bootstrap.zip"
  zips+=("$out/$f/bootstrap.zip")
done
python3 "$ROOT/scripts/check-lambda-zips.py" "${arch#--}" "${zips[@]}" >&2
printf '%s\n' "${zips[@]}"
