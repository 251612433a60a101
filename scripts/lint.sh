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
for f in bench perplexity replay replay-http placement store postgres serve report experiment \
  "bench,cli" "perplexity,cli" "replay,cli" "placement,cli" "store,cli" "serve,report,cli" "experiment,cli"; do
  cargo check --release -p benchkit --no-default-features --features "native,$f"
done
# A pp/tg user, and one who stores results, compile no async runtime or HTTP stack.
for f in bench store; do
  heavy=$(cargo tree -p benchkit --no-default-features --features "native,$f" -e normal --prefix none | grep -E '^(tokio|hyper|rustls|tokio-rustls|webpki-roots|axum) ' || true)
  if [ -n "$heavy" ]; then
    echo "lint: benchkit with --features $f depends on: $heavy" >&2
    exit 1
  fi
done
