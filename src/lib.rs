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

/// Path of one of llama.cpp's own tools (`llama-server`, `llama-bench`, ...), built from the
/// same llama.cpp version by scripts/build-reference-tools.sh: `env` (`BENCHKIT_LLAMA_SERVER`,
/// `BENCHKIT_LLAMA_BENCH`) when set, else that script's build directory. Panics with the
/// command to build it when it is missing.
fn reference_tool(name: &str, env: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/reference/build/bin").join(name));
    assert!(
        path.is_file(),
        "{name} not found at {}: run scripts/build-reference-tools.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// llama.cpp's llama-server (see [`reference_tool`]).
pub fn llama_server() -> PathBuf {
    reference_tool("llama-server", "BENCHKIT_LLAMA_SERVER")
}

/// llama.cpp's llama-bench (see [`reference_tool`]).
pub fn llama_bench() -> PathBuf {
    reference_tool("llama-bench", "BENCHKIT_LLAMA_BENCH")
}

/// Size in bytes of the real test model file.
pub const TEST_MODEL_BYTES: u64 = 253_113_024;
