#!/usr/bin/env bash
# Measures the local provider against RapidOCR, side by side on the same photos and one pinned core
# each: the card generator's standard, hard, wild and design sets (`--count` photos each, default 300; the
# wild set's photos and fonts are drawn from wider ranges than the reader was tuned on), read by
# ocrgate's local provider (ocrgate-ocr-bench, one inference thread) and by RapidOCR (the `rapidocr`
# package from PyPI, installed by this script into its own venv, one inference thread) with the
# number picker a team would write (scripts/rapidocr-bench.py). Prints each reader's misses, then
# exact-match rate and p50/p95 latency per set, and for RapidOCR the share of photos whose number
# is anywhere in its text (what its models read, whatever its picker took). Needs python3 with venv
# and pip, and PyPI once. Arguments after `--count N` go to ocrgate-ocr-bench: `--from SEED` for
# seeds nobody looked at, `--number-fonts target/fonts-held-out` for type families neither the
# generator nor the reader's models were made with (fetched here too).
set -euo pipefail
cd "$(dirname "$0")/.."

count=300
if [[ "${1:-}" == "--count" ]]; then
  count="$2"
  shift 2
fi

scripts/fetch-models.sh
scripts/fetch-fonts.sh
scripts/fetch-fonts.sh --held-out
cargo build --release --locked -p ocrgate-bench --bin ocrgate-ocr-bench

work=target/ocr-bench
venv="$work/venv"
if [[ "$(cat "$venv/.installed" 2>/dev/null)" != "$(sha256sum scripts/rapidocr-requirements.txt)" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/rapidocr-requirements.txt
  sha256sum scripts/rapidocr-requirements.txt >"$venv/.installed"
fi

summaries=()
for set in standard hard wild design; do
  rm -rf "${work:?}/$set"
  echo "== $set set: ocrgate"
  out="$(taskset -c 0 target/release/ocrgate-ocr-bench --models models --count "$count" \
    --set "$set" --write "$work/$set" "$@")"
  echo "$out"
  summaries+=("$(grep '^summary ' <<<"$out")")
  echo "== $set set: RapidOCR"
  out="$(taskset -c 0 "$venv/bin/python" scripts/rapidocr-bench.py "$set" "$work/$set")"
  echo "$out"
  summaries+=("$(grep '^summary ' <<<"$out")")
done

echo
echo "side by side, $count photos a set, one pinned core each:"
# in_text: RapidOCR's photos with the number among the digits of its text, whatever its picker took.
printf '%-9s %-9s %9s %9s %9s %9s\n' set reader exact in_text p50_ms p95_ms
for line in "${summaries[@]}"; do
  declare -A field=()
  for pair in ${line#summary }; do field[${pair%%=*}]=${pair#*=}; done
  in_text="${field[in_text]:+${field[in_text]}%}"
  printf '%-9s %-9s %8s%% %9s %9s %9s\n' "${field[set]}" "${field[reader]}" "${field[exact]}" \
    "${in_text:--}" "${field[p50_ms]}" "${field[p95_ms]}"
  unset field
done
