#!/usr/bin/env bash
# The main job on the embedded backend: builds batchfan, generates ROWS rows of
# the orders CSV (default 100000), and runs the `orders` pipeline on them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-100000}
cargo build --release --workspace
mkdir -p bench-data
[ -f "bench-data/orders-$ROWS.csv" ] || target/release/orders-gen --rows "$ROWS" --out "bench-data/orders-$ROWS.csv"
exec target/release/batchfan run jobs/orders.toml --input "bench-data/orders-$ROWS.csv"
