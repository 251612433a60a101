//! Rust bindings for the public C headers, generated with bindgen.

use crate::cmake_build::Built;
use std::path::Path;

pub fn generate(built: &Built, out_dir: &Path) {
    let manifest_dir = crate::env::cargo("CARGO_MANIFEST_DIR");
    let mut builder = bindgen::Builder::default()
        .header(format!("{manifest_dir}/wrapper.h"))
        .allowlist_function("(llama|ggml|gguf)_.*")
        .allowlist_type("(llama|ggml|gguf)_.*")
        .allowlist_var("(LLAMA|GGML|GGUF)_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new().rerun_on_header_files(false)));
    for dir in &built.include_dirs {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    // bindgen panics when it cannot load libclang; turn that into an actionable message.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.generate()));
    let bindings = match result {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => panic!("llama-sys: bindgen could not parse llama.cpp's headers: {e}"),
        Err(_) => panic!(
            "\n\nllama-sys: bindgen needs libclang, which could not be loaded.\n  \
             fix: sudo apt-get install -y libclang-dev   (or set LIBCLANG_PATH to the directory holding libclang.so)\n\n"
        ),
    };
    bindings.write_to_file(out_dir.join("bindings.rs")).expect("llama-sys: cannot write bindings.rs");
}
