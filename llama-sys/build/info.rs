//! Build information exported to Rust (`llama_sys::build_info`): every benchkit result record
//! carries it.

use crate::amx::Decision;
use crate::cmake_build::Built;
use crate::features::Selection;
use crate::source::Source;
use crate::toolchain::Toolchain;
use std::fmt::Write;
use std::path::Path;

pub fn write(src: &Source, built: &Built, features: &Selection, amx: &Decision, tools: &Toolchain, out_dir: &Path) {
    let mut s = String::new();
    let opt = |v: &Option<String>| match v {
        Some(v) => format!("Some({v:?})"),
        None => "None".into(),
    };
    let pairs = |v: &[(String, String)]| {
        let items: Vec<String> = v.iter().map(|(k, v)| format!("({k:?}, {v:?})")).collect();
        format!("&[{}]", items.join(", "))
    };
    let backends: Vec<String> = features.backends().iter().map(|b| format!("{b:?}")).collect();
    let feats: Vec<String> = features.enabled.iter().map(|f| format!("{:?}", f.name)).collect();
    writeln!(s, "/// Where the llama.cpp source came from: `LLAMA_CPP_DIR`, `vendor` or `crates.io`.").unwrap();
    writeln!(s, "pub const SOURCE_ORIGIN: &str = {:?};", src.origin.as_str()).unwrap();
    writeln!(s, "/// The llama.cpp source directory that was compiled.").unwrap();
    writeln!(s, "pub const SOURCE_DIR: &str = {:?};", src.dir.display().to_string()).unwrap();
    writeln!(s, "/// One-line description of the llama.cpp version.").unwrap();
    writeln!(s, "pub const DESCRIPTION: &str = {:?};", src.describe()).unwrap();
    writeln!(s, "/// Short git commit of the llama.cpp checkout, when built from one.").unwrap();
    writeln!(s, "pub const COMMIT: Option<&str> = {};", opt(&src.commit)).unwrap();
    writeln!(s, "/// llama.cpp build number (commit count), when built from a git checkout.").unwrap();
    writeln!(s, "pub const BUILD_NUMBER: Option<u64> = {:?};", src.build_number).unwrap();
    writeln!(s, "/// The checkout had uncommitted changes to tracked files.").unwrap();
    writeln!(s, "pub const DIRTY: bool = {};", src.dirty).unwrap();
    writeln!(s, "/// Package and version the source came from, for the pinned default.").unwrap();
    writeln!(s, "pub const PACKAGE: Option<&str> = {};", opt(&src.package)).unwrap();
    writeln!(s, "/// Backends compiled in.").unwrap();
    writeln!(s, "pub const BACKENDS: &[&str] = &[{}];", backends.join(", ")).unwrap();
    writeln!(s, "/// Cargo features of llama-sys that were enabled.").unwrap();
    writeln!(s, "pub const FEATURES: &[&str] = &[{}];", feats.join(", ")).unwrap();
    writeln!(s, "/// Every -D definition passed to CMake.").unwrap();
    writeln!(s, "pub const CMAKE_DEFINES: &[(&str, &str)] = {};", pairs(&built.defines)).unwrap();
    writeln!(s, "/// Compiler paths and flags from CMakeCache.txt.").unwrap();
    writeln!(s, "pub const CMAKE_CACHE: &[(&str, &str)] = {};", pairs(&built.cache)).unwrap();
    writeln!(s, "/// C++ compiler id and version, e.g. `GNU 12.2.0`.").unwrap();
    writeln!(s, "pub const COMPILER: &str = {:?};", built.compiler).unwrap();
    writeln!(s, "/// `static` or `dynamic`.").unwrap();
    let link = if features.has("dynamic-link") { "dynamic" } else { "static" };
    writeln!(s, "pub const LINK: &str = {link:?};").unwrap();
    writeln!(s, "/// Directory holding the built libraries.").unwrap();
    let lib_dir = built.lib_dirs.first().map(|d| d.display().to_string()).unwrap_or_default();
    writeln!(s, "pub const LIB_DIR: &str = {lib_dir:?};").unwrap();
    writeln!(s, "/// What the build did about AMX: `not-targeted`, `works`, `patched`, `disabled` or `kept`.").unwrap();
    writeln!(s, "pub const AMX_MODE: &str = {:?};", amx.mode).unwrap();
    writeln!(s, "/// Why: what the probe of the compiler's AMX intrinsics found.").unwrap();
    writeln!(s, "pub const AMX_REASON: &str = {:?};", amx.reason).unwrap();
    let flags: Vec<String> = amx.flags.iter().map(|f| format!("{f:?}")).collect();
    writeln!(s, "/// Compiler flags added for it.").unwrap();
    writeln!(s, "pub const AMX_FLAGS: &[&str] = &[{}];", flags.join(", ")).unwrap();
    write_cuda(&mut s, built, features, tools);
    std::fs::write(out_dir.join("build_info.rs"), s).expect("llama-sys: cannot write build_info.rs");
}

fn write_cuda(s: &mut String, built: &Built, features: &Selection, tools: &Toolchain) {
    let cuda = tools.cuda.as_ref();
    let version = cuda.map(|c| c.version.clone());
    let archs = if cuda.is_some() { cuda_architectures(built) } else { Vec::new() };
    let link = cuda.map(|_| {
        if features.has("dynamic-link") {
            "cudart dynamic, cublas dynamic".to_string()
        } else {
            "cudart static, cublas dynamic".to_string()
        }
    });
    let vmm = cuda.is_some() && features.effective("GGML_CUDA_NO_VMM").as_deref() != Some("ON");
    let opt = |v: &Option<String>| v.as_ref().map_or("None".into(), |v| format!("Some({v:?})"));
    let archs: Vec<String> = archs.iter().map(|a| format!("{a:?}")).collect();
    writeln!(s, "/// CUDA toolkit release the CUDA backend was compiled with (`13.0.88`); `None` without CUDA.")
        .unwrap();
    writeln!(s, "pub const CUDA_VERSION: Option<&str> = {};", opt(&version)).unwrap();
    writeln!(
        s,
        "/// GPU code in the CUDA backend: `sm_90` is machine code, `compute_90` PTX for the driver to compile."
    )
    .unwrap();
    writeln!(s, "pub const CUDA_ARCHITECTURES: &[&str] = &[{}];", archs.join(", ")).unwrap();
    writeln!(s, "/// How the CUDA runtime and cuBLAS are linked, e.g. `cudart static, cublas dynamic`.").unwrap();
    writeln!(s, "pub const CUDA_LINK: Option<&str> = {};", opt(&link)).unwrap();
    writeln!(s, "/// ggml-cuda's virtual-memory pool is compiled in (then libcuda is a load-time dependency).")
        .unwrap();
    writeln!(s, "pub const CUDA_VMM: bool = {vmm};").unwrap();
}

/// The `--generate-code` targets CMake gave nvcc for ggml-cuda, read back from the generated
/// build files (what was compiled, whatever the request); the requested
/// `CMAKE_CUDA_ARCHITECTURES` when those cannot be read.
fn cuda_architectures(built: &Built) -> Vec<String> {
    let build = built.prefix.join("build");
    let files = [build.join("ggml/src/ggml-cuda/CMakeFiles/ggml-cuda.dir/flags.make"), build.join("build.ninja")];
    let mut found: Vec<String> = Vec::new();
    for text in files.iter().filter_map(|f| std::fs::read_to_string(f).ok()) {
        for part in text.split("code=").skip(1) {
            let list = part.strip_prefix('[').map_or_else(
                || part.split(|c: char| c.is_whitespace() || c == '"').next().unwrap_or_default(),
                |p| p.split(']').next().unwrap_or_default(),
            );
            for code in list.split(',').map(str::trim) {
                if (code.starts_with("sm_") || code.starts_with("compute_")) && !found.iter().any(|f| f == code) {
                    found.push(code.to_string());
                }
            }
        }
        if !found.is_empty() {
            break;
        }
    }
    if found.is_empty() {
        let requested = built.defines.iter().rev().find(|(k, _)| k == "CMAKE_CUDA_ARCHITECTURES");
        let cached = built.cache.iter().find(|(k, _)| k == "CMAKE_CUDA_ARCHITECTURES");
        if let Some((_, v)) = requested.or(cached) {
            found.push(v.clone());
        }
    }
    // Machine code first, then PTX, each by number.
    found.sort_by_key(|c| (c.starts_with("compute_"), c.clone()));
    found
}

/// `OUT_DIR/reference-cmake-args`: the compilers, flags and GGML options of this build, one CMake
/// argument a line, so that scripts/build-reference-tools.sh builds llama.cpp's own tools the
/// same way (like for like in fidelity runs).
pub fn write_reference_args(built: &Built, out_dir: &Path) {
    let mut s = String::new();
    let from_cache = ["CMAKE_C_COMPILER", "CMAKE_CXX_COMPILER", "CMAKE_C_FLAGS", "CMAKE_CXX_FLAGS"];
    for (k, v) in built.cache.iter().filter(|(k, _)| from_cache.contains(&k.as_str())) {
        writeln!(s, "-D{k}={v}").unwrap();
    }
    // Position-independent code changes what GCC inlines and clones in ggml (measured under
    // callgrind: docs/fidelity.md), so the reference tools get it too.
    // The GPU targets too, so that a CUDA llama-bench holds the same machine code.
    let wanted = |k: &str| {
        (k.starts_with("GGML_") && k != "GGML_CCACHE")
            || k == "CMAKE_POSITION_INDEPENDENT_CODE"
            || k == "CMAKE_CUDA_ARCHITECTURES"
    };
    for (k, v) in built.defines.iter().filter(|(k, _)| wanted(k)) {
        writeln!(s, "-D{k}={v}").unwrap();
    }
    std::fs::write(out_dir.join("reference-cmake-args"), s).expect("llama-sys: cannot write reference-cmake-args");
}
