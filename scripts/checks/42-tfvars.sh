#!/usr/bin/env bash
# The example's committed orders.auto.tfvars.json is what `batchfan tfvars`
# renders from jobs/orders.toml today.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --quiet --locked -p batchfan -- tfvars jobs/orders.toml \
  --out terraform/examples/orders/orders.auto.tfvars.json --check
