#!/usr/bin/env bash
# Fetches what the local provider runs on into a models directory (default: models/):
# PaddleOCR's text direction classifier from the rapidocr wheel and libonnxruntime.so from the
# onnxruntime wheel, both from PyPI, pinned by hash in scripts/models-requirements.txt, and copies
# in ocrgate's own detector and recogniser, data/card-detector.onnx and data/card-recogniser.onnx
# (PP-OCRv6 small's, trained on: scripts/card-detector/, scripts/card-recogniser/). Does nothing
# when the directory already holds what this script, those pins and those files make.
# Needs python3 with pip, and PyPI; nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-models}"
requirements=scripts/models-requirements.txt
detector=data/card-detector.onnx
recogniser=data/card-recogniser.onnx
wanted="$(cat "$requirements" scripts/fetch-models.sh "$detector" "$recogniser" | sha256sum \
  | cut -d' ' -f1)"
if [[ "$(cat "$dir/.fetched" 2>/dev/null)" == "$wanted" ]]; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
  --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 \
  --implementation cp --abi cp311 -r "$requirements" -d "$work"

mkdir -p "$dir"
python3 - "$work" "$dir" <<'PY'
import pathlib, sys, zipfile

work, target = map(pathlib.Path, sys.argv[1:])
wanted = {
    "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
for wheel in work.glob("*.whl"):
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("onnxruntime/capi/libonnxruntime.so."):
                wanted[name] = "libonnxruntime.so"
            if name in wanted:
                (target / wanted.pop(name)).write_bytes(archive.read(name))
if not (target / "libonnxruntime.so").is_file():
    wanted["onnxruntime/capi/libonnxruntime.so.*"] = "libonnxruntime.so"
if wanted:
    sys.exit(f"not found in the wheels: {', '.join(wanted)}")
PY
cp "$detector" "$dir/card-detector.onnx"
cp "$recogniser" "$dir/card-recogniser.onnx"
echo "$wanted" >"$dir/.fetched"
echo "local provider files in $dir:" >&2
ls -l "$dir" >&2
