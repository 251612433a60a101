#!/usr/bin/env bash
# Builds the benchkit wheel (abi3: one wheel for CPython 3.10 and later) into target/wheels/
# and prints its path. Extra arguments go to `maturin build`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
venv=target/maturin-venv
[ -x "$venv/bin/maturin" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9,<2"; }
"$venv/bin/maturin" build --release --manifest-path benchkit-py/Cargo.toml --out target/wheels "$@" >&2
ls -t target/wheels/benchkit-*.whl | head -1
