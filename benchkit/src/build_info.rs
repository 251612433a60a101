//! How the linked llama.cpp was built; carried by every result record.

use llama_sys::build_info as bi;

/// Build information: llama.cpp source and version, backends, compiler and flags.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildInfo {
    /// benchkit's own version.
    pub benchkit_version: String,
    /// Where the llama.cpp source came from: `LLAMA_CPP_DIR`, `vendor` or `crates.io`.
    pub source: String,
    /// The compiled source directory.
    pub source_dir: String,
    /// One-line description, e.g. `llama.cpp b1234 (abcdef12)`.
    pub description: String,
    /// Short git commit (llama-bench `build_commit`), `unknown` outside a git checkout.
    pub build_commit: String,
    /// Commit count (llama-bench `build_number`), 0 when unknown.
    pub build_number: u64,
    /// The checkout had uncommitted changes.
    pub dirty: bool,
    /// Package and version for the pinned default source.
    pub package: Option<String>,
    /// ggml's version string.
    pub ggml_version: String,
    /// Backends compiled in (`CPU`, `CUDA`, ...).
    pub backends: Vec<String>,
    /// Cargo features of llama-sys.
    pub features: Vec<String>,
    /// Compiler id and version.
    pub compiler: String,
    /// CMake definitions passed to the build.
    pub cmake_defines: Vec<(String, String)>,
    /// Compiler paths and flags from the CMake cache.
    pub cmake_cache: Vec<(String, String)>,
    /// `static` or `dynamic`.
    pub link: String,
    /// What the build did about ggml's AMX kernels: `works` (the compiler's intrinsics passed
    /// llama-sys's probe), `patched` (they did not; a corrected declaration was force-included),
    /// `disabled` (AMX left out), `not-targeted` (no AMX on the build target), `kept` (unprobed).
    #[serde(default)]
    pub amx: String,
    /// Why: what the probe found.
    #[serde(default)]
    pub amx_reason: String,
}

impl BuildInfo {
    /// The build info of the llama.cpp linked into this binary.
    pub fn current() -> Self {
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        // SAFETY: returns a pointer to a static NUL-terminated string.
        let ggml_version = unsafe { crate::util::cstr_to_string(llama_sys::ggml_version()) };
        BuildInfo {
            benchkit_version: env!("CARGO_PKG_VERSION").to_string(),
            source: bi::SOURCE_ORIGIN.to_string(),
            source_dir: bi::SOURCE_DIR.to_string(),
            description: bi::DESCRIPTION.to_string(),
            build_commit: bi::COMMIT.unwrap_or("unknown").to_string(),
            build_number: bi::BUILD_NUMBER.unwrap_or(0),
            dirty: bi::DIRTY,
            package: bi::PACKAGE.map(str::to_string),
            ggml_version,
            backends: bi::BACKENDS.iter().map(|s| s.to_string()).collect(),
            features: bi::FEATURES.iter().map(|s| s.to_string()).collect(),
            compiler: bi::COMPILER.to_string(),
            cmake_defines: pairs(bi::CMAKE_DEFINES),
            cmake_cache: pairs(bi::CMAKE_CACHE),
            link: bi::LINK.to_string(),
            amx: bi::AMX_MODE.to_string(),
            amx_reason: bi::AMX_REASON.to_string(),
        }
    }

    /// llama.cpp's version string (`llama_version()`, e.g. `0.6.0-dev`).
    pub fn llama_version() -> String {
        // SAFETY: returns a pointer to a static NUL-terminated string.
        unsafe { crate::util::cstr_to_string(llama_sys::llama_version()) }
    }

    /// What llama-bench's `--version` prints (to stderr): `version: V (build N, commit C)`, then
    /// `built with COMPILER for TARGET`, the target spelled as CMake's system name and
    /// processor (`Linux x86_64`).
    pub fn version_text(&self) -> String {
        let os = match std::env::consts::OS {
            "linux" => "Linux",
            "macos" => "Darwin",
            "windows" => "Windows",
            "freebsd" => "FreeBSD",
            "android" => "Android",
            other => other,
        };
        format!(
            "version: {} (build {}, commit {})\nbuilt with {} for {os} {}\n",
            Self::llama_version(),
            self.build_number,
            self.build_commit,
            self.compiler,
            std::env::consts::ARCH
        )
    }

    /// llama-bench's `backends` field: the non-CPU backends compiled in, comma separated, or
    /// `CPU` when there is none (as llama-bench writes it).
    pub fn backends_csv(&self) -> String {
        let gpu: Vec<&str> = self.backends.iter().map(String::as_str).filter(|b| *b != "CPU").collect();
        if gpu.is_empty() {
            "CPU".into()
        } else {
            gpu.join(",")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text_is_llama_bench_s() {
        let b = BuildInfo::current();
        let text = b.version_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let want =
            format!("version: {} (build {}, commit {})", BuildInfo::llama_version(), b.build_number, b.build_commit);
        assert_eq!(lines[0], want);
        assert!(!BuildInfo::llama_version().is_empty());
        assert!(lines[1].starts_with(&format!("built with {} for ", b.compiler)), "{}", lines[1]);
    }
}
