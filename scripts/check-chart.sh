#!/usr/bin/env bash
# The deployment artefacts: the Helm chart lints strictly and renders, with the default values and
# every ci/*-values.yaml, into manifests that validate against Kubernetes 1.27 and the newest
# schemas kubernetes-validate knows, and pass checkov; a misspelled value is refused; the rendered
# configuration is one ocrgate accepts. The Dockerfile passes hadolint and ships the binary that
# `cargo build --release -p ocrgate` makes.
# usage: check-chart.sh TOOLS_BIN OCRGATE_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$1"
ocrgate="$2"
chart=helm/ocrgate
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$tools/helm" lint --strict "$chart"
for values in "$chart"/ci/*-values.yaml; do
  "$tools/helm" lint --strict "$chart" -f "$values" >/dev/null
done
if "$tools/helm" lint --strict "$chart" -f "$chart/ci/bad-values.yaml.invalid" >/dev/null 2>&1; then
  echo "helm lint accepted a misspelled value" >&2
  exit 1
fi
echo "helm lint: the schema refuses a misspelled value"

render() { "$tools/helm" template ocrgate "$chart" --namespace ocrgate "$@"; }
render >"$out/default.yaml"
for values in "$chart"/ci/*-values.yaml; do
  render -f "$values" >"$out/$(basename "$values")"
done
for manifest in "$out"/*.yaml; do
  "$tools/kubernetes-validate" --strict --quiet -k 1.27.0 "$manifest"
  "$tools/kubernetes-validate" --strict --quiet "$manifest"
done
echo "kubernetes-validate: every rendering is valid for 1.27 and the newest schemas"

"$tools/checkov" --framework kubernetes --skip-download --quiet --compact \
  $(printf -- '-f %s ' "$out"/*.yaml)
echo "checkov: no failed check"

# The Secrets a configuration names are mounted under /var/run/secrets: stand-ins take their place,
# made to measure where a file must parse, and plain text for any other file a configuration names.
"$tools/python" scripts/chart-secrets.py "$out/secrets"
for manifest in "$out"/*.yaml; do
  "$tools/python" - "$manifest" "$out/ocrgate.toml" "$out/secrets" <<'PY'
import pathlib, re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["ocrgate.toml"]
config = config.replace("/var/run/secrets/", sys.argv[3] + "/")
for path in re.findall(re.escape(sys.argv[3]) + r'/[^"]+', config):
    path = pathlib.Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("chart-check-stand-in\n")
open(sys.argv[2], "w").write(config)
PY
  env -i "$ocrgate" check-config --config "$out/ocrgate.toml" >/dev/null
done
echo "ocrgate check-config: every rendered configuration is accepted"

"$tools/hadolint" Dockerfile
grep -q 'cargo build --release --locked -p ocrgate' Dockerfile
grep -q 'cp target/release/ocrgate /dist/ocrgate' Dockerfile
grep -q 'RUN scripts/fetch-models.sh /dist/models' Dockerfile
grep -q 'ENV OCRGATE_LOCAL__MODELS_DIR=/models' Dockerfile
grep -q 'ENTRYPOINT \["/usr/local/bin/ocrgate", "serve"\]' Dockerfile
echo "Dockerfile: hadolint clean; ships the release binary as its entrypoint and the local provider's models"
