#!/usr/bin/env bash
# Measures the gateway's QR decoding (ocrgate::qr, rxing) against rqrr, zbar and OpenCV's WeChat
# QR decoder, side by side on the same images and one pinned core: the card generator's invoice
# title scenes (screenshot, screen-photo, paper, small, several; `--count` images each, default
# 200, seeds from `--from`, default 50000, a range held out from development). Prints decode rate
# and p50/p95 per set and decoder, never a seed. zbar is Debian's libzbar0 (the library zbarimg
# runs) through pyzbar; OpenCV's decoder comes from opencv-contrib-python-headless, both from PyPI
# into their own venv (scripts/qr-bench-requirements.txt); WeChat's decoder runs without its CNN
# model files, which no package registry carries.
set -euo pipefail
cd "$(dirname "$0")/.."

count=200
from=50000
while (($#)); do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --from) from="$2"; shift 2 ;;
    *) echo "usage: bench-qr.sh [--count N] [--from SEED]" >&2; exit 2 ;;
  esac
done

scripts/fetch-fonts.sh
if ! dpkg-query -W -f='${Status}' libzbar0 2>/dev/null | grep -q 'ok installed'; then
  sudo=$([[ $EUID -eq 0 ]] || echo sudo)
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends libzbar0 >/dev/null
fi
cargo build --release --locked -p ocrgate-bench --bin ocrgate-qr-bench

work=target/qr-bench
venv="$work/venv"
if [[ "$(cat "$venv/.installed" 2>/dev/null)" != "$(sha256sum scripts/qr-bench-requirements.txt)" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/qr-bench-requirements.txt
  sha256sum scripts/qr-bench-requirements.txt >"$venv/.installed"
fi

images="$work/images-$from"
rm -rf "$images"
echo "== ocrgate and rqrr, seeds $from.. ($count a set), one pinned core"
taskset -c 0 target/release/ocrgate-qr-bench --held-out --from "$from" --count "$count" \
  --write "$images"
echo "== zbar and OpenCV's WeChat decoder, the same images, one pinned core"
taskset -c 0 "$venv/bin/python" scripts/qr-bench.py "$images"
rm -rf "$images"
