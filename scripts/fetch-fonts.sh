#!/usr/bin/env bash
# Fetches the fonts the synthetic card generator (cardgen/) draws with into a directory (default:
# target/fonts): OCR-A, DejaVu, Liberation and FreeFont; for the hard mode Hack, Croscore
# (Cousine, Arimo, Tinos), Go, Noto Mono, Roboto, JetBrains Mono and Lato; for the wild mode B612,
# Fira Code, mononoki, Open Sans, Quicksand, Carlito, Oxygen, URW's base 35, Fantasque Sans, League
# Spartan, Cantarell and Inconsolata. Debian packages, unpacked without installing (root only to
# fetch the package lists, on a machine that has none). Does nothing when they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-target/fonts}"
packages=(fonts-ocr-a fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-hack fonts-croscore
  fonts-go fonts-noto-mono fonts-roboto-unhinted fonts-jetbrains-mono fonts-lato
  fonts-b612 fonts-firacode fonts-mononoki fonts-open-sans fonts-quicksand fonts-crosextra-carlito
  fonts-oxygen fonts-urw-base35 fonts-fantasque-sans fonts-league-spartan fonts-cantarell
  fonts-inconsolata)
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
find "$work/root" \( -name '*.ttf' -o -name '*.otf' \) -exec cp {} "$dir/" \;
echo "${packages[*]}" >"$dir/.fetched"
