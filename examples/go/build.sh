#!/usr/bin/env bash
# Builds the Go example offline, from Debian's packages: Go 1.19 (golang-go), grpc-go
# (golang-google-grpc-dev), protobuf-go (golang-google-protobuf-dev), genproto's google.rpc types
# (golang-google-genproto-dev), protoc (protobuf-compiler) and its Go plugins (protoc-gen-go,
# protoc-gen-go-grpc), in GOPATH mode with the sources under /usr/share/gocode: no module proxy.
# The stubs are generated into the build folder, never committed.
# usage: examples/go/build.sh OUT_DIR   (writes OUT_DIR/ocrgate-example)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../proto"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
gopath="$out/gopath"
package="$gopath/src/example.com/ocrgate-client"
mapping="Mocrgate/v1/ocrgate.proto=example.com/ocrgate-client/gen/ocrgatev1"

rm -rf "$gopath"
mkdir -p "$package"
cp "$here/main.go" "$package/"
protoc -I "$proto" --go_out="$gopath/src" --go_opt="$mapping" \
  --go-grpc_out="$gopath/src" --go-grpc_opt="$mapping" "$proto/ocrgate/v1/ocrgate.proto"
cd "$gopath"
GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="${GOCACHE:-$out/go-cache}" \
  go build -o "$out/ocrgate-example" example.com/ocrgate-client
