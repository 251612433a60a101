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
    /// The CUDA backend's toolkit and GPU code; absent without CUDA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda: Option<CudaBuild>,
}

/// How the CUDA backend was built.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CudaBuild {
    /// CUDA toolkit (nvcc) release, e.g. `13.0.88`.
    pub version: String,
    /// GPU code compiled in: `sm_90` is machine code for that architecture, `compute_90` PTX
    /// that the driver compiles for newer ones.
    pub architectures: Vec<String>,
    /// How the CUDA runtime and cuBLAS are linked, e.g. `cudart static, cublas dynamic`.
    pub link: String,
    /// ggml-cuda's virtual-memory pool is compiled in (libcuda is then needed to start).
    pub vmm: bool,
}

impl CudaBuild {
    /// The CUDA build of this binary, when it has the CUDA backend.
    pub fn current() -> Option<Self> {
        Some(CudaBuild {
            version: bi::CUDA_VERSION?.to_string(),
            architectures: bi::CUDA_ARCHITECTURES.iter().map(|s| s.to_string()).collect(),
            link: bi::CUDA_LINK.unwrap_or_default().to_string(),
            vmm: bi::CUDA_VMM,
        })
    }

    /// One line: `CUDA 13.0.88 for sm_90, compute_90 (cudart static, cublas dynamic, no VMM)`.
    pub fn text(&self) -> String {
        let archs =
            if self.architectures.is_empty() { "default architectures".into() } else { self.architectures.join(", ") };
        let vmm = if self.vmm { "VMM pool" } else { "no VMM" };
        format!("CUDA {} for {archs} ({}, {vmm})", self.version, self.link)
    }
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
            cuda: CudaBuild::current(),
        }
    }

    /// llama.cpp's version string (`llama_version()`, e.g. `0.6.0-dev`).
    pub fn llama_version() -> String {
        // SAFETY: returns a pointer to a static NUL-terminated string.
        unsafe { crate::util::cstr_to_string(llama_sys::llama_version()) }
    }

    /// What llama-bench's `--version` prints (to stderr): `version: V (build N, commit C)`, then
    /// `built with COMPILER for TARGET`, the target spelled as CMake's system name and
    /// processor (`Linux x86_64`). A CUDA build adds a third line, [`CudaBuild::text`].
    pub fn version_text(&self) -> String {
        let os = match std::env::consts::OS {
            "linux" => "Linux",
            "macos" => "Darwin",
            "windows" => "Windows",
            "freebsd" => "FreeBSD",
            "android" => "Android",
            other => other,
        };
        let mut text = format!(
            "version: {} (build {}, commit {})\nbuilt with {} for {os} {}\n",
            Self::llama_version(),
            self.build_number,
            self.build_commit,
            self.compiler,
            std::env::consts::ARCH
        );
        if let Some(cuda) = &self.cuda {
            text.push_str(&cuda.text());
            text.push('\n');
        }
        text
    }

    /// What `benchkit --version` adds under its own version: the llama.cpp source, the
    /// backends and, for a CUDA build, [`CudaBuild::text`].
    pub fn long_version(&self) -> String {
        let mut text = format!(
            "{}\nllama.cpp: {}\nbackends: {}\n",
            self.benchkit_version,
            self.description,
            self.backends.join(", ")
        );
        if let Some(cuda) = &self.cuda {
            text.push_str(&cuda.text());
            text.push('\n');
        }
        text
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
        assert_eq!(lines.len(), if b.cuda.is_some() { 3 } else { 2 });
        let want =
            format!("version: {} (build {}, commit {})", BuildInfo::llama_version(), b.build_number, b.build_commit);
        assert_eq!(lines[0], want);
        assert!(!BuildInfo::llama_version().is_empty());
        assert!(lines[1].starts_with(&format!("built with {} for ", b.compiler)), "{}", lines[1]);
    }

    /// A CUDA build names its toolkit and GPU code; a build without CUDA writes no `cuda`
    /// key, so its provenance is what it was before CUDA builds existed.
    #[test]
    fn cuda_fields_follow_the_backends() {
        let b = BuildInfo::current();
        let json = serde_json::to_value(&b).unwrap();
        match &b.cuda {
            None => {
                assert!(!b.backends.iter().any(|x| x == "CUDA"));
                assert!(json.get("cuda").is_none());
            }
            Some(c) => {
                assert!(b.backends.iter().any(|x| x == "CUDA"));
                assert!(c.version.chars().next().is_some_and(|ch| ch.is_ascii_digit()), "{}", c.version);
                assert!(!c.architectures.is_empty());
                assert_eq!(json["cuda"]["version"], c.version.as_str());
                assert!(b.version_text().lines().nth(2).unwrap().starts_with("CUDA "));
            }
        }
        let cuda = CudaBuild {
            version: "13.0.88".into(),
            architectures: vec!["sm_90".into(), "compute_90".into()],
            link: "cudart static, cublas dynamic".into(),
            vmm: false,
        };
        assert_eq!(cuda.text(), "CUDA 13.0.88 for sm_90, compute_90 (cudart static, cublas dynamic, no VMM)");
        let mut with = b.clone();
        with.cuda = Some(cuda);
        let back: BuildInfo = serde_json::from_value(serde_json::to_value(&with).unwrap()).unwrap();
        assert_eq!(back, with);
        // Records written before the field existed still read.
        let mut old = serde_json::to_value(&b).unwrap();
        old.as_object_mut().unwrap().remove("cuda");
        assert_eq!(serde_json::from_value::<BuildInfo>(old).unwrap().cuda, None);
    }
}
