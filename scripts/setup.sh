#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build benchkit: CMake, a C++ compiler,
# libclang (for bindgen), ccache, git, and Python's pip and venv (the test model, the Python
# bindings). Idempotent.
set -euo pipefail

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v c++ >/dev/null || need+=(g++)
command -v ccache >/dev/null || need+=(ccache)
command -v git >/dev/null || need+=(git)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v curl >/dev/null || need+=(curl)
ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1 || [ -n "${LIBCLANG_PATH:-}" ] || need+=(libclang-dev)
command -v python3 >/dev/null || need+=(python3 python3-pip)
# The Python bindings' tests build into a virtualenv (Debian's python3 splits venv out).
command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null && need+=(python3-venv)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
