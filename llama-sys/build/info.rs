//! Build information exported to Rust (`llama_sys::build_info`): every benchkit result record
//! carries it.

use crate::amx::Decision;
use crate::cmake_build::Built;
use crate::features::Selection;
use crate::source::Source;
use std::fmt::Write;
use std::path::Path;

pub fn write(src: &Source, built: &Built, features: &Selection, amx: &Decision, out_dir: &Path) {
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
    std::fs::write(out_dir.join("build_info.rs"), s).expect("llama-sys: cannot write build_info.rs");
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
    let wanted = |k: &str| (k.starts_with("GGML_") && k != "GGML_CCACHE") || k == "CMAKE_POSITION_INDEPENDENT_CODE";
    for (k, v) in built.defines.iter().filter(|(k, _)| wanted(k)) {
        writeln!(s, "-D{k}={v}").unwrap();
    }
    std::fs::write(out_dir.join("reference-cmake-args"), s).expect("llama-sys: cannot write reference-cmake-args");
}
