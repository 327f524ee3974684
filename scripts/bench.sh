#!/usr/bin/env bash
# Builds the gateway and the benchmark in release mode and runs the benchmark; arguments go to
# ocrgate-bench (see `scripts/bench.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p ocrgate -p ocrgate-bench
exec target/release/ocrgate-bench --gateway target/release/ocrgate "$@"
