//! Shared helpers for the workspace's examples, integration tests and criterion suites.

use std::path::PathBuf;

/// Path of the real test model (gemma-3-270m Q4_K_M).
///
/// `BENCHKIT_TEST_MODEL`, else `models/gemma-3-270m-q4_k_m.gguf` in the workspace. Panics with
/// the command to fetch it when it is missing: tests that need the real model fail, they are
/// never skipped.
pub fn test_model() -> PathBuf {
    let path = std::env::var_os("BENCHKIT_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/gemma-3-270m-q4_k_m.gguf"));
    assert!(
        path.is_file(),
        "the real test model is missing at {}: run scripts/fetch-test-model.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Path of llama.cpp's own llama-server, built from the same llama.cpp version by
/// scripts/build-reference-tools.sh: `BENCHKIT_LLAMA_SERVER`, else its build directory. Panics
/// with the command to build it when it is missing.
pub fn llama_server() -> PathBuf {
    let path = std::env::var_os("BENCHKIT_LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/reference/build/bin/llama-server"));
    assert!(
        path.is_file(),
        "llama-server not found at {}: run scripts/build-reference-tools.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Size in bytes of the real test model file.
pub const TEST_MODEL_BYTES: u64 = 253_113_024;
