#!/usr/bin/env bash
# Builds the Java example offline, from Debian's packages: a JDK (17), grpc-java (libgrpc-java,
# with libnetty-java, libperfmark-java, libgoogle-gson-java, libguava-java), protobuf-java
# (libprotobuf-java), protoc (protobuf-compiler) and its Java gRPC plugin
# (protobuf-compiler-grpc-java-plugin), and the javax.annotation.Generated the plugin's stubs carry
# (libgeronimo-annotation-1.3-spec-java). google.rpc's Status and ErrorInfo are generated from the
# .proto files the Python package googleapis-common-protos carries (found with $PYTHON). The stubs
# are generated into the build folder, never committed.
# usage: examples/java/build.sh OUT_DIR   (writes OUT_DIR/ocrgate-example, a launcher)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../proto"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
googleapis="$("${PYTHON:-python3}" -c \
  'import google.rpc, pathlib; print(pathlib.Path(list(google.rpc.__path__)[0]).parents[1])')"

jars=(grpc-api grpc-core grpc-netty grpc-stub grpc-protobuf grpc-protobuf-lite grpc-context
  protobuf guava perfmark-api gson netty-buffer netty-codec netty-codec-http netty-codec-http2
  netty-common netty-handler netty-resolver netty-transport geronimo-annotation-1.3-spec)
classpath="$(printf '/usr/share/java/%s.jar:' "${jars[@]}")"

rm -rf "$out/gen" "$out/classes"
mkdir -p "$out/gen" "$out/classes"
protoc -I "$proto" -I "$googleapis" --java_out="$out/gen" \
  --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin --grpc-java_out="$out/gen" \
  "$proto/ocrgate/v1/ocrgate.proto" "$googleapis/google/rpc/status.proto" \
  "$googleapis/google/rpc/error_details.proto"
find "$out/gen" -name '*.java' -print0 \
  | xargs -0 javac -nowarn -d "$out/classes" -cp "$classpath" "$here/OcrgateExample.java"
cat >"$out/ocrgate-example" <<LAUNCHER
#!/bin/sh
exec java -cp "$out/classes:$classpath" OcrgateExample "\$@"
LAUNCHER
chmod +x "$out/ocrgate-example"
