#!/usr/bin/env bash
# The tree's habits, as CI checks them: rustfmt (rustfmt.toml) and clippy with warnings as
# errors, over every target. Release profile, so the llama.cpp build of scripts/test.sh serves.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v rustup >/dev/null; then
  rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed | grep -q '^clippy' || rustup component add clippy
fi
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
# Capability features: each builds alone, and `bench` alone pulls in no async or HTTP stack.
for f in bench perplexity replay replay-http placement "bench,cli" "perplexity,cli" "replay,cli" "placement,cli"; do
  cargo check --release -p benchkit --no-default-features --features "native,$f"
done
heavy=$(cargo tree -p benchkit --no-default-features --features native,bench -e normal --prefix none | grep -E '^(tokio|hyper|rustls|tokio-rustls|webpki-roots) ' || true)
if [ -n "$heavy" ]; then
  echo "lint: benchkit with --features bench depends on: $heavy" >&2
  exit 1
fi
