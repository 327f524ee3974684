#!/usr/bin/env bash
# Builds and runs ocrgate on 127.0.0.1:50051. With no WeChat account configured (neither
# OCRGATE_WECHAT_APP_ID nor OCRGATE_CONFIG set), it also runs the WeChat simulator and points
# ocrgate at it, so every RPC answers. Extra arguments go to `ocrgate serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p ocrgate -p wechat-sim
export OCRGATE_LISTEN="${OCRGATE_LISTEN:-127.0.0.1:50051}"

if [[ -z "${OCRGATE_WECHAT_APP_ID:-}" && -z "${OCRGATE_CONFIG:-}" ]]; then
  sim_listen="${WECHAT_SIM_LISTEN:-127.0.0.1:8090}"
  target/release/wechat-sim --listen "$sim_listen" &
  sim_pid=$!
  trap 'kill "$sim_pid" 2>/dev/null || true' EXIT
  export OCRGATE_WECHAT_APP_ID=wxsimulator
  export OCRGATE_WECHAT_APP_SECRET=simulator-secret
  export OCRGATE_WECHAT_BASE_URL="http://$sim_listen/"
  echo "no WeChat account configured: using the simulator at $sim_listen" >&2
fi

target/release/ocrgate serve "$@"
