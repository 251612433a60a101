//! Raw FFI bindings to [llama.cpp](https://github.com/ggml-org/llama.cpp): `llama.h`, `ggml.h`,
//! `ggml-cpu.h`, `ggml-backend.h` and `gguf.h`, compiled from source with CMake.
//!
//! The source is, in this order: `LLAMA_CPP_DIR`, a checkout in `vendor/llama.cpp/`, or the
//! llama.cpp tree pinned inside the crates.io package `llama-cpp-sys-2`. See [`build_info`] for
//! what was built. Use the safe `benchkit` crate instead of calling these directly.

#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case, missing_docs, improper_ctypes)]
#![allow(clippy::all, clippy::undocumented_unsafe_blocks)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// How this copy of llama.cpp was built: source, version, backends, compiler and flags.
pub mod build_info {
    include!(concat!(env!("OUT_DIR"), "/build_info.rs"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_reports_build_info() {
        // SAFETY: llama_print_system_info returns a pointer to a static NUL-terminated string.
        let info = unsafe { std::ffi::CStr::from_ptr(llama_print_system_info()) };
        assert!(info.to_string_lossy().contains("CPU"));
        assert!(build_info::BACKENDS.contains(&"CPU"));
        assert!(!build_info::DESCRIPTION.is_empty());
        // SAFETY: ggml_commit returns a pointer to a static NUL-terminated string.
        let commit = unsafe { std::ffi::CStr::from_ptr(ggml_commit()) }.to_string_lossy().into_owned();
        assert_eq!(commit.trim_end_matches("-dirty"), build_info::COMMIT.unwrap_or("unknown"));
    }

    /// The probe's decision fits this machine: a native build on a CPU with AMX either works or
    /// is patched (GCC 12 here), and a CPU without AMX is not targeted.
    #[test]
    fn amx_decision_fits_this_machine() {
        let cpu_has_amx = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" amx_tile"));
        let native = build_info::FEATURES.contains(&"native");
        let expected: &[&str] = match (native, cpu_has_amx) {
            _ if std::env::var_os("LLAMA_SYS_AMX").is_some() => return,
            (false, _) => &["not-targeted"],
            (true, false) => &["not-targeted"],
            (true, true) if build_info::COMPILER.starts_with("GNU 12.") => &["patched"],
            (true, true) => &["works", "patched"],
        };
        assert!(expected.contains(&build_info::AMX_MODE), "{} ({})", build_info::AMX_MODE, build_info::AMX_REASON);
        assert_eq!(
            build_info::AMX_FLAGS.is_empty(),
            build_info::AMX_MODE != "patched" && build_info::AMX_MODE != "disabled"
        );
    }

    /// scripts/check-llama-cpp-dir.sh builds with `LLAMA_CPP_DIR` and states what build info
    /// must then say; without those variables this checks the default (pinned) source.
    #[test]
    fn build_info_names_the_source_that_was_built() {
        let origin = std::env::var("LLAMA_SYS_EXPECT_ORIGIN").unwrap_or_else(|_| build_info::SOURCE_ORIGIN.into());
        assert_eq!(build_info::SOURCE_ORIGIN, origin);
        match build_info::SOURCE_ORIGIN {
            "crates.io" => {
                assert_eq!(build_info::PACKAGE, Some("llama-cpp-sys-2 0.1.161"));
                assert!(build_info::SOURCE_DIR.contains("llama-cpp-sys-2-0.1.161"));
            }
            _ => assert!(build_info::PACKAGE.is_none()),
        }
        if let Ok(dir) = std::env::var("LLAMA_SYS_EXPECT_DIR") {
            let want = std::path::Path::new(&dir).canonicalize().unwrap();
            assert_eq!(std::path::Path::new(build_info::SOURCE_DIR), want);
        }
        if let Ok(commit) = std::env::var("LLAMA_SYS_EXPECT_COMMIT") {
            assert_eq!(build_info::COMMIT, Some(commit.as_str()));
            assert!(build_info::BUILD_NUMBER.unwrap_or(0) >= 1);
            assert!(build_info::DESCRIPTION.contains(&commit), "{}", build_info::DESCRIPTION);
        }
    }
}
