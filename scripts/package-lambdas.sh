#!/usr/bin/env bash
# Builds the three dispatcher Lambdas (dispatchers/: trigger, submit, alert)
# with `cargo lambda build --release` into the zips terraform/modules/pipeline
# deploys: $OUT/{trigger,submit,alert}/bootstrap.zip (OUT defaults to
# target/lambda in the repository, the module's default lambda_package_dir).
#
#   scripts/package-lambdas.sh [--arm64 | --x86-64] [--out DIR]
#
# --arm64 (the default) or --x86-64 must match the module's lambda_architecture.
# cargo-lambda and ziglang (its cross linker) come from PyPI into a virtualenv
# (BATCHFAN_LAMBDA_VENV, default .tools/lambda-venv), installed when missing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.13.0
FUNCTIONS=(trigger submit alert)
PACKAGE=batchfan-dispatchers

arch=--arm64
target=aarch64-unknown-linux-gnu
out="$ROOT/target/lambda"
while [ $# -gt 0 ]; do
  case "$1" in
    --arm64) arch=--arm64; target=aarch64-unknown-linux-gnu ;;
    --x86-64) arch=--x86-64; target=x86_64-unknown-linux-gnu ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "package-lambdas: unknown argument $1: use --arm64, --x86-64 or --out DIR" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "package-lambdas: $*" >&2; exit 1; }

# The crate must be there before anything is installed or built.
manifest=dispatchers/Cargo.toml
[ -f "$manifest" ] || die "the dispatchers crate is missing ($manifest, package $PACKAGE with binaries ${FUNCTIONS[*]}): it is built on the AWS backend branch; merge it first"
grep -Eq "^name *= *\"$PACKAGE\"" "$manifest" || die "$manifest does not define package $PACKAGE"
for f in "${FUNCTIONS[@]}"; do
  [ -f "dispatchers/src/bin/$f.rs" ] || grep -Eq "^name *= *\"$f\"" "$manifest" \
    || die "$manifest has no binary $f (expected dispatchers/src/bin/$f.rs or a [[bin]] named $f)"
done

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

mkdir -p "$out"
start=$(date +%s)
# No debug info and stripped symbols: the release profile keeps line tables
# for the job binaries' backtraces, which made each bootstrap ~100 MB.
build() {
  CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo lambda build --release "$arch" --output-format zip --lambda-dir "$out" \
    --locked -p "$PACKAGE" $(printf -- '--bin %s ' "${FUNCTIONS[@]}")
}
# A link can fail transiently (zig's first-use cache, a loaded machine); the
# retry only relinks, and a real error fails again.
if ! build; then
  echo "package-lambdas: the build failed; retrying once" >&2
  build
fi
echo "package-lambdas: built in $(( $(date +%s) - start ))s" >&2

for f in "${FUNCTIONS[@]}"; do
  [ -f "$out/$f/bootstrap.zip" ] || die "cargo lambda did not produce $out/$f/bootstrap.zip"
  echo "$out/$f/bootstrap.zip"
done
