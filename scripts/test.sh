#!/usr/bin/env bash
# Runs every check the project has: the proto contract lint and the whole Rust test suite.
# Installs what it needs (buf, from PyPI) under target/tools on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/tools
if [[ ! -x "$tools/bin/buf" ]]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check buf-bin==1.75.0
fi
"$tools/bin/buf" lint
echo "buf lint: proto/ is clean under STANDARD rules"

cargo test --workspace --locked
