#!/usr/bin/env bash
# Builds and runs ocrgate on 127.0.0.1:50051, with the local provider's models fetched into models/.
# With no WeChat account configured (neither OCRGATE_WECHAT_APP_ID nor OCRGATE_CONFIG set), bank
# cards are read by the local provider, and invoice titles come from the WeChat simulator, which
# it starts and points ocrgate at, so every RPC answers. Extra arguments go to `ocrgate serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-models.sh
cargo build --release --locked -p ocrgate -p vendor-sim
export OCRGATE_LISTEN="${OCRGATE_LISTEN:-127.0.0.1:50051}"

if [[ -z "${OCRGATE_WECHAT_APP_ID:-}" && -z "${OCRGATE_CONFIG:-}" ]]; then
  sim_listen="${WECHAT_SIM_LISTEN:-127.0.0.1:8090}"
  target/release/vendor-sim --listen "$sim_listen" &
  sim_pid=$!
  trap 'kill "$sim_pid" 2>/dev/null || true' EXIT
  export OCRGATE_WECHAT_APP_ID=wxsimulator
  export OCRGATE_WECHAT_APP_SECRET=simulator-secret
  export OCRGATE_WECHAT_BASE_URL="http://$sim_listen/"
  export OCRGATE_ROUTING__BANK_CARD='["local"]'
  echo "no WeChat account configured: bank cards are read locally, invoice titles come from the simulator at $sim_listen" >&2
fi

target/release/ocrgate serve "$@"
