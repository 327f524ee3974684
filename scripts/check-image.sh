#!/usr/bin/env bash
# The container image: built from the Dockerfile without a daemon (podman, from Debian's packages)
# on a runtime base assembled from Debian's packages, then run as the Helm chart runs it
# (tests/image.rs): health, /metrics, a card read by the models in the image, a title through the
# simulator, SIGTERM with calls in flight. Two broken images, one missing a model file and one
# with the wrong user, must fail that check with a message that says so. Prints the image's size,
# the time to SERVING and the RSS, and writes the SBOM of the image's Rust dependencies (CycloneDX)
# beside the image in target/image/ and into it.
# usage: check-image.sh TOOLS_BIN   (the tools scripts/test.sh installs: helm, python with PyYAML)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/containers.sh
tools="$(realpath "$1")"

base=localhost/ocrgate-base:bookworm
image=localhost/ocrgate:check
out=target/image
context="$out/context"

if ! "$tools/cargo-cyclonedx" --version 2>/dev/null | grep -q ' 0.5.9$'; then
  cargo install --quiet --locked --root "$(dirname "$tools")" cargo-cyclonedx@0.5.9
fi
scripts/build-base-image.sh "$base"
cargo build --release --locked -p ocrgate
scripts/fetch-models.sh

# What the Dockerfile's `prebuilt` payload takes: the binary, the models and the SBOM.
rm -rf "$context"
mkdir -p "$context/dist/models"
cp target/release/ocrgate "$context/dist/"
cp models/*.onnx models/libonnxruntime.so "$context/dist/models/"
# cargo-cyclonedx writes one SBOM per binary beside each crate's manifest; ocrgate's is kept.
"$tools/cargo-cyclonedx" cyclonedx --quiet --describe binaries --no-build-deps \
  --spec-version 1.5 --format json
mv ocrgate_bin.cdx.json "$context/dist/ocrgate.cdx.json"
git ls-files --others --ignored --exclude-standard -z -- '*_bin.cdx.json' | xargs -0 -r rm -f
cp "$context/dist/ocrgate.cdx.json" "$out/ocrgate.cdx.json"

build() { # build IMAGE CONTEXT
  podman build --quiet --pull=never --file Dockerfile --build-arg RUNTIME_BASE="$base" \
    --build-arg PAYLOAD=prebuilt --tag "$1" "$2" >/dev/null
}
check() { # check IMAGE: the image run as the chart runs it
  TEST_TOOLS_BIN="$tools" TEST_REQUIRE_TOOLS=1 OCRGATE_TEST_IMAGE="$1" \
    cargo test --quiet --locked --test image -- --ignored --nocapture
}
build "$image" "$context"
size="$(podman image inspect --format '{{.Size}}' "$image")"
components="$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["components"]))' \
  "$out/ocrgate.cdx.json")"
echo "image $image: $((size / 1000000)) MB (goal: at most 150 MB, models included)"
echo "SBOM: $out/ocrgate.cdx.json, $components Rust components (in the image as /usr/share/doc/ocrgate/ocrgate.cdx.json)"
check "$image"

# A check that cannot fail proves nothing: two broken images must fail it, each saying why.
broken=localhost/ocrgate:check-broken
expect_failure() { # expect_failure WHAT MESSAGE
  local log="$out/broken.log"
  if check "$broken" >"$log" 2>&1; then
    echo "the image check passed an image with $1" >&2
    exit 1
  fi
  if ! grep -q -- "$2" "$log"; then
    echo "the image check failed an image with $1, but without saying \"$2\":" >&2
    tail -30 "$log" >&2
    exit 1
  fi
  echo "image check: an image with $1 fails it, saying \"$2\""
}
rm "$context/dist/models/card-recogniser.onnx"
build "$broken" "$context"
expect_failure "a model file missing" "card-recogniser.onnx"
printf 'FROM %s\nUSER 0:0\n' "$image" | podman build --quiet --pull=never --tag "$broken" - >/dev/null
expect_failure "the wrong user" "but the chart runs it as 65532:65532"

podman rmi --force "$broken" >/dev/null
podman image prune --force >/dev/null
rm -rf "$context"
