#!/usr/bin/env bash
# Runs every check the project has: the proto contract (buf lint, buf breaking), the whole Rust
# test suite (whose client tests run the Python and Node examples and grpcurl against the server),
# the Helm chart and Dockerfile checks, then the image built and run as the chart runs it.
# Installs what it needs on first use: the tools in scripts/tools-requirements.txt and helm under
# target/tools, the Node example's packages under examples/node/node_modules, the local provider's
# models and ONNX Runtime under models/ (PyPI), the card generator's fonts under target/fonts
# (Debian packages), redis-server (Debian's package) for the shared daily budget tests, h2load
# (Debian's nghttp2-client) for the benchmark's floor, and Go 1.19 and a JDK with gRPC's Debian
# packages for the Go and Java examples; scripts/check-image.sh installs podman and buildah
# (Debian's packages) and cargo-cyclonedx (crates.io) for the image.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="$PWD/target/tools"
wanted="$(sha256sum scripts/tools-requirements.txt scripts/install-helm.sh | sha256sum)"
if [[ "$(cat "$tools/.installed" 2>/dev/null)" != "$wanted" ]]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check -r scripts/tools-requirements.txt
  scripts/install-helm.sh "$tools/bin" "$tools/bin/python"
  echo "$wanted" >"$tools/.installed"
fi
# Debian's packages: redis-server, h2load, and the Go and Java examples' toolchains and libraries
# (examples/go/build.sh and examples/java/build.sh say which is which).
packages=(redis-server nghttp2-client protobuf-compiler
  golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  golang-google-genproto-dev protoc-gen-go protoc-gen-go-grpc
  default-jdk-headless libgrpc-java libprotobuf-java protobuf-compiler-grpc-java-plugin
  libnetty-java libperfmark-java libgoogle-gson-java libguava-java
  libgeronimo-annotation-1.3-spec-java)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=$([[ $EUID -eq 0 ]] || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
npm ci --prefix examples/node --no-audit --no-fund --loglevel=error
scripts/fetch-models.sh
scripts/fetch-fonts.sh

scripts/check-proto.sh "$tools/bin/buf"

# The client tests fail, rather than skip, when a tool is missing.
TEST_TOOLS_BIN="$tools/bin" TEST_REQUIRE_TOOLS=1 cargo test --workspace --locked

scripts/check-chart.sh "$tools/bin" target/debug/ocrgate
scripts/check-image.sh "$tools/bin"
