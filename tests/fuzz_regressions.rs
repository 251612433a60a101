//! Every input the fuzzers ever failed on (tests/fuzz/<target>/), and the committed seed
//! corpora (fuzz/corpus/<target>/), replayed through the fuzz targets' own checks: a parser
//! that regresses fails here, in the normal test suite, without cargo fuzz.
//!
//! The checks measure the live heap through a counting global allocator, so they run one
//! after another in a single test.

#[path = "../fuzz/src/checks.rs"]
mod checks;
#[path = "../fuzz/src/heap.rs"]
mod heap;
#[path = "../fuzz/src/split.rs"]
mod split;

use std::path::{Path, PathBuf};

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("gguf", checks::gguf),
    ("sse", checks::sse),
    ("prometheus", checks::prometheus),
    ("sharegpt", checks::sharegpt),
    ("trace", checks::trace),
    ("bench_args", checks::bench_args),
    ("experiment", checks::experiment),
    ("arms", checks::arms),
];

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("directory entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_kept_input_passes_its_targets_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for &(target, check) in TARGETS {
        let kept = inputs(&root.join("tests/fuzz").join(target));
        let corpus = inputs(&root.join("fuzz/corpus").join(target));
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} has no seed");
        for file in kept.iter().chain(&corpus) {
            let data = std::fs::read(file).expect("read input");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails its check again", file.display());
            seen += 1;
        }
    }
    assert!(seen >= TARGETS.len());
}
