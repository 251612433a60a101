#!/usr/bin/env bash
# Runs every test: installs build prerequisites, fetches the real test model, then the Rust
# test suites (unit, integration, doc) in release mode (one llama.cpp build serves tests and
# the main job).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BENCHKIT_TEST_MODEL=${BENCHKIT_TEST_MODEL:-$(scripts/fetch-test-model.sh)}
export BENCHKIT_TEST_MODEL
cargo test --release --workspace --all-targets "$@"
cargo test --release --workspace --doc
