#!/usr/bin/env bash
# Fetches the fonts the synthetic card generator (cardgen/) draws with into a directory (default:
# target/fonts): OCR-A, DejaVu, Liberation and FreeFont, and for the hard mode Hack, Croscore
# (Cousine, Arimo, Tinos), Go, Noto Mono, Roboto, JetBrains Mono and Lato, as Debian packages, unpacked without
# installing (root only to fetch the package lists, on a machine that has none). Does nothing when
# they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-target/fonts}"
packages=(fonts-ocr-a fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-hack fonts-croscore
  fonts-go fonts-noto-mono fonts-roboto-unhinted fonts-jetbrains-mono fonts-lato)
if [[ "$(cat "$dir/.fetched" 2>/dev/null)" == "${packages[*]}" ]]; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
download() { (cd "$work" && apt-get download "${packages[@]}" >/dev/null); }
# A machine whose package lists were never fetched, or were cleaned, knows no packages yet.
if ! download 2>/dev/null; then
  apt-get update -qq
  download
fi
mkdir -p "$dir"
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$work/root"
done
find "$work/root" -name '*.ttf' -exec cp {} "$dir/" \;
echo "${packages[*]}" >"$dir/.fetched"
