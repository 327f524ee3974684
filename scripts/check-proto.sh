#!/usr/bin/env bash
# The API contract: proto/ is clean under buf's STANDARD lint rules, and no change since the
# previous commit breaks a client (a field renumbered, removed or retyped fails). Also proves the
# breaking check bites, by renumbering a field in a scratch copy.
# usage: check-proto.sh BUF
set -euo pipefail
cd "$(dirname "$0")/.."
buf="$1"

"$buf" lint
echo "buf lint: proto/ is clean"

if git rev-parse --verify --quiet HEAD~1 >/dev/null \
  && git cat-file -e HEAD~1:proto/ocrgate/v1/ocrgate.proto 2>/dev/null; then
  "$buf" breaking --against ".git#ref=HEAD~1"
  echo "buf breaking: no breaking change since the previous commit"
else
  echo "buf breaking: no previous commit with the proto to compare against"
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp -r buf.yaml proto "$scratch/"
sed -i 's/string card_number = 1;/string card_number = 11;/' "$scratch/proto/ocrgate/v1/ocrgate.proto"
if (cd "$scratch" && "$buf" breaking --against "$OLDPWD" >/dev/null 2>&1); then
  echo "buf breaking did not catch a renumbered field" >&2
  exit 1
fi
echo "buf breaking: catches a renumbered field"
