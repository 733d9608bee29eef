#!/usr/bin/env bash
# The example's committed orders.auto.tfvars.json is what `batchfan tfvars`
# renders from jobs/orders.toml today.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The build scripts/test.sh made (workspace, all targets: the features it
# resolves, dev-dependencies' included), reused as it is: `cargo run -p
# batchfan` resolves them for one package without its tests, and compiled
# tokio and everything above it again (~7 minutes cold).
cargo build --quiet --locked --workspace --all-targets
"${CARGO_TARGET_DIR:-target}/debug/batchfan" tfvars jobs/orders.toml \
  --out terraform/examples/orders/orders.auto.tfvars.json --check
