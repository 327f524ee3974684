#!/usr/bin/env bash
# Fetches the fonts the synthetic card generator (cardgen/) draws with into a directory (default:
# target/fonts): OCR-A, DejaVu, Liberation and FreeFont; for the hard mode Hack, Croscore
# (Cousine, Arimo, Tinos), Go, Noto Mono, Roboto, JetBrains Mono and Lato; for the wild mode B612,
# Fira Code, mononoki, Open Sans, Quicksand, Carlito, Oxygen, URW's base 35, Fantasque Sans, League
# Spartan, Cantarell and Inconsolata. Debian packages, unpacked without installing (root only to
# fetch the package lists, on a machine that has none). Does nothing when they are already there.
#
# `--held-out [DIR]` fetches instead, into target/fonts-held-out, the bold faces of 16 type
# families that neither the generator's modes nor the reader's second recogniser were ever made
# with, for `--number-fonts` (cardgen, ocrgate-ocr-bench): Accanthis, Andika, Anonymous Pro,
# Caladea, Comic Neue, Courier Prime Sans, Inter, Linux Biolinum and Libertine, Monoid, Agave,
# Computer Modern (serif and typewriter), Charis SIL, Cabin and Hermit. (TeX Gyre's are not among
# them: they are URW base 35's designs, which target/fonts holds.)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == --held-out ]]; then
  dir="${2:-target/fonts-held-out}"
  packages=(fonts-adf-accanthis fonts-sil-andika fonts-anonymous-pro fonts-crosextra-caladea
    fonts-comic-neue fonts-courier-prime fonts-inter fonts-linuxlibertine fonts-monoid fonts-agave
    fonts-cmu fonts-sil-charis fonts-cabin fonts-hermit)
  faces=(AccanthisADFStd-Bold.otf Andika-Bold.ttf 'Anonymous Pro B.ttf' Caladea-Bold.ttf
    ComicNeue-Bold.otf 'Courier Prime Sans Bold.otf' Inter-Bold.otf LinBiolinum_RB.otf
    LinLibertine_RB.otf Monoid-Bold.ttf agave-b-autohinted.ttf cmunbx.ttf cmuntb.ttf
    CharisSIL-Bold.ttf Cabin-Bold.otf Hermit-bold.otf)
else
  dir="${1:-target/fonts}"
  packages=(fonts-ocr-a fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-hack fonts-croscore
    fonts-go fonts-noto-mono fonts-roboto-unhinted fonts-jetbrains-mono fonts-lato
    fonts-b612 fonts-firacode fonts-mononoki fonts-open-sans fonts-quicksand fonts-crosextra-carlito
    fonts-oxygen fonts-urw-base35 fonts-fantasque-sans fonts-league-spartan fonts-cantarell
    fonts-inconsolata)
  faces=()
fi
# What the folder was filled from: the packages, and the faces taken when not every one is.
fetched="${packages[*]}${faces[*]:+ | ${faces[*]}}"
if [[ "$(cat "$dir/.fetched" 2>/dev/null)" == "$fetched" ]]; then
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
if ((${#faces[@]})); then
  # Every font in the folder is drawn: none but these.
  find "$dir" -maxdepth 1 -type f \( -name '*.ttf' -o -name '*.otf' \) -delete
  for face in "${faces[@]}"; do
    find "$work/root" -name "$face" -exec cp {} "$dir/" \; -quit
    [[ -f "$dir/$face" ]] || { echo "no $face in ${packages[*]}" >&2; exit 1; }
  done
else
  find "$work/root" \( -name '*.ttf' -o -name '*.otf' \) -exec cp {} "$dir/" \;
fi
echo "$fetched" >"$dir/.fetched"
