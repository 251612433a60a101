#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets, cargo fuzz + libFuzzer) one after another.
#
#   scripts/fuzz.sh [--time SECONDS] [--smoke] [TARGET...]
#
# --time: seconds per target (default 600). --smoke: CI's run, 20 s per target from the
# committed corpus alone. Targets default to all of them.
#
# Each target fuzzes a working corpus (target/fuzz/corpus/T, kept between runs) seeded from
# the committed one (fuzz/corpus/T, never written). Per run, one line goes to
# target/fuzz/stats.tsv: target, seconds, executions, coverage (cov), features (ft), corpus
# size, findings. A finding (crash, leak, timeout, out-of-memory, failed check) is saved
# under target/fuzz/artifacts/T/ and fails the script; fix it, then keep the input under
# tests/fuzz/T/ so tests/fuzz_regressions.rs replays it in the normal test suite.
#
# The toolchain's stable rustc builds the targets: RUSTC_BOOTSTRAP=1 lets it take the
# sanitizer flags cargo fuzz passes (no nightly toolchain is needed, or installed in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=600
smoke=0
targets=()
while (($#)); do
    case "$1" in
        --time) secs=$2; shift 2 ;;
        --smoke) smoke=1; secs=20; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || { echo "fuzz.sh: --time takes a whole number of seconds" >&2; exit 2; }

cargo_fuzz_version=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
    echo "fuzz.sh: installing cargo-fuzz $cargo_fuzz_version" >&2
    cargo install --quiet --locked cargo-fuzz --version "$cargo_fuzz_version"
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
# -O: optimised like a release build; -a: with debug assertions, so integer overflow is a finding.
build_flags=(-O -a)
mapfile -t all < <(cd fuzz && cargo fuzz list)
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
    printf '%s\n' "${all[@]}" | grep -qx "$t" || { echo "fuzz.sh: no target $t (have: ${all[*]})" >&2; exit 2; }
done

work=$PWD/target/fuzz
mkdir -p "$work"
stats=$work/stats.tsv
[[ -s $stats ]] || printf 'date\ttarget\tseconds\texecs\tcov\tft\tcorpus\tfindings\n' >"$stats"

echo "fuzz.sh: building ${#targets[@]} targets" >&2
if ((${#targets[@]} == ${#all[@]})); then
    (cd fuzz && cargo fuzz build "${build_flags[@]}") >&2
else
    (cd fuzz && for t in "${targets[@]}"; do cargo fuzz build "${build_flags[@]}" "$t"; done) >&2
fi

failed=()
for t in "${targets[@]}"; do
    if ((smoke)); then
        corpus=$(mktemp -d)
    else
        corpus=$work/corpus/$t
        mkdir -p "$corpus"
    fi
    art=$work/artifacts/$t
    mkdir -p "$art"
    log=$work/$t.log
    before=$(find "$art" -type f | wc -l)
    # -timeout: one input may take 10 s at most (a hang is a finding); -rss_limit_mb and
    # -malloc_limit_mb: memory is bounded whatever the input; -max_len: inputs up to 1 MiB.
    set +e
    (cd fuzz && cargo fuzz run "${build_flags[@]}" "$t" "$corpus" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -max_len=1048576 -print_final_stats=1 -artifact_prefix="$art/") >"$log" 2>&1
    rc=$?
    set -e
    findings=$(($(find "$art" -type f | wc -l) - before))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' <<<"$done_line" | grep -o '[0-9]*$' || true)
    ft=$(grep -o 'ft: [0-9]*' <<<"$done_line" | grep -o '[0-9]*$' || true)
    units=$(grep -o 'corp: [0-9]*' <<<"$done_line" | grep -o '[0-9]*$' || true)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$secs" "${execs:-0}" "${cov:-?}" \
        "${ft:-?}" "${units:-?}" "$findings" | tee -a "$stats"
    if ((rc != 0 || findings > 0)); then
        failed+=("$t")
        echo "fuzz.sh: $t failed (exit $rc); its log: $log; inputs: $art" >&2
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -8 >&2 || true
    fi
    if ((smoke)); then rm -rf "$corpus"; fi
done

if ((${#failed[@]})); then
    echo "fuzz.sh: findings in ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${secs} s each, no finding"
