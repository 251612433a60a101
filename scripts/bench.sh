#!/usr/bin/env bash
# The main job: llama-bench style pp512/tg128 of the embedded default model (a synthetic model with
# TinyLlama-1.1B's shape, Q4_0, generated once and cached). No download needed.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys on paths relative to the checkout, so another clone reuses the same objects.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
scripts/setup.sh
cargo run --release --bin benchkit -- bench "$@"
