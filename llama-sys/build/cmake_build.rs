//! Configure and build llama.cpp with the `cmake` crate.

use crate::amx::Decision;
use crate::env;
use crate::features::Selection;
use crate::source::Source;
use crate::toolchain::Toolchain;
use std::path::{Path, PathBuf};

/// What the CMake build produced.
pub struct Built {
    /// Install prefix: `include/` and `lib/` below it.
    pub prefix: PathBuf,
    pub lib_dirs: Vec<PathBuf>,
    pub include_dirs: Vec<PathBuf>,
    /// Every -D definition passed to CMake.
    pub defines: Vec<(String, String)>,
    /// Selected entries of CMakeCache.txt (compiler, flags), for build info.
    pub cache: Vec<(String, String)>,
    pub compiler: String,
}

pub fn build(src: &Source, features: &Selection, amx: &Decision, tools: &Toolchain) -> Built {
    let mut defines = features.defines();
    if let Some(cuda) = &tools.cuda {
        // The toolkit the checks found, not whatever CMake would find first on PATH.
        for (k, v) in [("CMAKE_CUDA_COMPILER", &cuda.nvcc), ("CUDAToolkit_ROOT", &cuda.root)] {
            if !features.user_sets(k) {
                defines.push((k.into(), v.display().to_string()));
            }
        }
    }
    // Make ggml_commit()/ggml_version() agree with what benchkit reports.
    defines.push(("LLAMA_BUILD_COMMIT".into(), src.commit.clone().unwrap_or_else(|| "unknown".into())));
    defines.push(("LLAMA_BUILD_NUMBER".into(), src.build_number.unwrap_or(0).to_string()));

    let mut cfg = cmake::Config::new(&src.dir);
    // A benchmark library always measures an optimised llama.cpp, whatever the cargo profile.
    cfg.profile("Release");
    // Compile with llama.cpp's own flags (as a plain CMake build / llama-bench would), not the
    // cc crate's defaults (`-march=x86-64 -w ...`).
    cfg.no_default_flags(true);
    for (k, v) in &defines {
        cfg.define(k, v);
    }
    for flag in &amx.flags {
        cfg.cflag(flag);
        cfg.cxxflag(flag);
    }
    if let Some(jobs) = env::var("LLAMA_SYS_BUILD_JOBS") {
        cfg.build_arg(format!("-j{jobs}"));
    }
    let prefix = cfg.build();

    let lib_dirs: Vec<PathBuf> = ["lib", "lib64"].iter().map(|d| prefix.join(d)).filter(|d| d.is_dir()).collect();
    let include_dirs = vec![prefix.join("include")];
    let cache = read_cache(&prefix.join("build/CMakeCache.txt"));
    let compiler = compiler_id(&prefix.join("build/CMakeFiles"));
    Built { prefix, lib_dirs, include_dirs, defines, cache, compiler }
}

/// Keys of CMakeCache.txt that describe how the code was compiled.
const CACHE_KEYS: &[&str] = &[
    "CMAKE_C_COMPILER",
    "CMAKE_CXX_COMPILER",
    "CMAKE_C_FLAGS",
    "CMAKE_CXX_FLAGS",
    "CMAKE_C_FLAGS_RELEASE",
    "CMAKE_CXX_FLAGS_RELEASE",
    "CMAKE_CUDA_ARCHITECTURES",
    "CMAKE_CUDA_COMPILER",
    "CMAKE_CUDA_HOST_COMPILER",
    "CMAKE_CUDA_FLAGS",
    "GGML_NATIVE",
    "GGML_OPENMP",
    "GGML_CCACHE",
    "GGML_CCACHE_FOUND",
];

fn read_cache(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some((key_type, value)) = line.split_once('=') {
            let key = key_type.split(':').next().unwrap_or_default();
            if CACHE_KEYS.contains(&key) {
                out.push((key.to_string(), value.to_string()));
            }
        }
    }
    out
}

/// "GNU 12.2.0" from CMakeFiles/<version>/CMakeCXXCompiler.cmake.
fn compiler_id(cmake_files: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(cmake_files) else { return "unknown".into() };
    for e in entries.flatten() {
        let text = std::fs::read_to_string(e.path().join("CMakeCXXCompiler.cmake")).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("set({name} \"")))
                .map(|v| v.trim_end_matches("\")").to_string())
        };
        if let (Some(id), Some(ver)) = (field("CMAKE_CXX_COMPILER_ID"), field("CMAKE_CXX_COMPILER_VERSION")) {
            return format!("{id} {ver}");
        }
    }
    "unknown".into()
}
