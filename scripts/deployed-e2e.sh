#!/usr/bin/env bash
# The deployed pipeline, end to end, on one machine: `terraform apply` of
# terraform/examples/orders (every trigger on, the real Lambda zips) to moto
# server and `batchfan batch-api`, then the scenarios (a 100,000-row upload,
# a failed child, duplicated events, signed webhooks, schedule ticks) through
# the deployed wiring, then `terraform destroy`: tests/deployed.rs.
#
# scripts/test.sh runs the same test with every other one (cargo nextest);
# this script runs only it, after the set-up it needs (moto, zip tools,
# terraform and its provider: scripts/setup/*.sh) and the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
for setup in scripts/setup/20-moto.sh scripts/setup/35-zip-tools.sh; do
  # shellcheck source=/dev/null
  source "$setup"
done
command -v terraform >/dev/null || { echo "deployed-e2e: terraform is missing: install Terraform >= 1.11" >&2; exit 1; }
cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run -p batchfan --locked --no-capture -E 'binary(integration) & test(/^deployed::/)'
else
  cargo test -p batchfan --locked --test integration -- --nocapture deployed::
fi
