#!/usr/bin/env bash
# Measures the local provider: exact-match accuracy over synthetic card photos and latency per
# image on one core (pinned with taskset, one inference thread). Arguments go to ocrgate-ocr-bench
# (`scripts/bench-ocr.sh --help`), e.g. `--count 500`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
scripts/fetch-fonts.sh
cargo build --release --locked -p ocrgate-bench --bin ocrgate-ocr-bench
exec taskset -c 0 target/release/ocrgate-ocr-bench --models models "$@"
