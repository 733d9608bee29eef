#!/usr/bin/env bash
# Packages the dispatcher Lambdas as deployed (scripts/package-lambdas.sh:
# release, arm64, the module's default). The script ends by checking each zip
# as Lambda takes it (scripts/check-lambda-zips.py: `bootstrap` at the root,
# executable, an aarch64 ELF, stripped, within Lambda's sizes) and fails on the
# first that is not.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${BATCHFAN_LAMBDA_OUT:-target/lambda}
start=$(date +%s)
bash scripts/package-lambdas.sh --arm64 --out "$out"
echo "packaging and checks took $(( $(date +%s) - start ))s"
