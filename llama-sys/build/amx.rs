//! Guard against compilers that miscompile ggml's AMX kernels.
//!
//! ggml builds its AMX kernels whenever the compiler targets AMX (`-march=native` on a
//! Sapphire Rapids or later Xeon). GCC 12's `_tile_loadconfig` declares an 8-byte asm operand
//! for the 64-byte tile configuration; the optimiser drops the stores to it, `ldtilecfg` loads
//! garbage, and every batched decode dies with SIGSEGV. So before configuring llama.cpp this
//! compiles and runs `amx/probe.cpp` with the same compiler and target flags:
//!
//! - the probe passes: nothing changes, benchkit runs what llama-bench runs;
//! - it fails: `amx/tileconfig-fix.h` (the same instructions, declared with the whole block) is
//!   force-included and the probe must then pass; if it still fails the AMX kernels are left out.
//!
//! `LLAMA_SYS_AMX=auto|keep|patch|off` overrides the decision (`auto` by default).

use crate::env;
use crate::features::Selection;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the build does about AMX, recorded in build info.
pub struct Decision {
    /// `not-targeted`, `works`, `patched`, `disabled` or `kept`.
    pub mode: &'static str,
    pub reason: String,
    /// Extra flags for every C and C++ compile of llama.cpp.
    pub flags: Vec<String>,
}

impl Decision {
    fn new(mode: &'static str, reason: impl Into<String>, flags: Vec<String>) -> Self {
        Decision { mode, reason: reason.into(), flags }
    }
}

const NO_AMX_FLAGS: &[&str] = &["-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"];

fn fix_header() -> PathBuf {
    PathBuf::from(env::cargo("CARGO_MANIFEST_DIR")).join("build/amx/tileconfig-fix.h")
}

fn patch_flags() -> Vec<String> {
    vec![format!("-include {}", fix_header().display())]
}

fn off_flags() -> Vec<String> {
    NO_AMX_FLAGS.iter().map(|s| s.to_string()).collect()
}

/// The C++ compiler CMake will use (the cmake crate hands it `CXX` or `c++`).
fn cxx() -> String {
    env::var("CXX").unwrap_or_else(|| "c++".into())
}

pub fn decide(features: &Selection, out_dir: &Path) -> Decision {
    let mode = env::var("LLAMA_SYS_AMX").unwrap_or_else(|| "auto".into());
    match mode.as_str() {
        "auto" => {}
        "keep" => return Decision::new("kept", "LLAMA_SYS_AMX=keep: the compiler's intrinsics, unprobed", vec![]),
        "patch" => return Decision::new("patched", "LLAMA_SYS_AMX=patch", patch_flags()),
        "off" => return Decision::new("disabled", "LLAMA_SYS_AMX=off: AMX kernels left out", off_flags()),
        other => panic!(
            "\n\nllama-sys: LLAMA_SYS_AMX={other:?} is not one of auto, keep, patch, off\n  \
             fix: unset it (auto probes the compiler), or pick one of those\n\n"
        ),
    }
    if !features.has("native") {
        return Decision::new("not-targeted", "GGML_NATIVE is off: the AMX kernels are not compiled", vec![]);
    }
    let cxx = cxx();
    if !targets_amx(&cxx) {
        return Decision::new("not-targeted", format!("{cxx} -march=native does not target AMX on this CPU"), vec![]);
    }
    let dir = out_dir.join("amx-probe");
    std::fs::create_dir_all(&dir).expect("llama-sys: cannot create OUT_DIR/amx-probe");
    match run_probe(&cxx, &dir, "plain", &[]) {
        Probe::Passed => Decision::new("works", format!("{cxx}'s _tile_loadconfig passed the probe"), vec![]),
        Probe::CannotRun(why) => Decision::new(
            "patched",
            format!("the probe could not run here ({why}); the corrected declaration is applied, as it is correct for any GCC"),
            patch_flags(),
        ),
        Probe::Failed(plain) => match run_probe(&cxx, &dir, "patched", &patch_flags()) {
            Probe::Passed => Decision::new(
                "patched",
                format!(
                    "{cxx}'s _tile_loadconfig loses the tile configuration ({plain}); \
                     build/amx/tileconfig-fix.h declares its 64-byte operand and passes the probe"
                ),
                patch_flags(),
            ),
            Probe::Failed(why) | Probe::CannotRun(why) => Decision::new(
                "disabled",
                format!("{cxx}'s _tile_loadconfig fails the probe ({plain}) and so does the fix ({why}): AMX kernels left out"),
                off_flags(),
            ),
        },
    }
}

fn targets_amx(cxx: &str) -> bool {
    let out = Command::new(cxx).args(["-march=native", "-dM", "-E", "-x", "c++", "/dev/null"]).output();
    out.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("#define __AMX_TILE__ "))
}

enum Probe {
    Passed,
    /// What the probe printed or how it died.
    Failed(String),
    CannotRun(String),
}

fn run_probe(cxx: &str, dir: &Path, name: &str, flags: &[String]) -> Probe {
    let src = PathBuf::from(env::cargo("CARGO_MANIFEST_DIR")).join("build/amx/probe.cpp");
    let exe = dir.join(format!("probe-{name}"));
    let mut cmd = Command::new(cxx);
    // The optimisation level and target ggml's Release build uses.
    cmd.args(["-O3", "-DNDEBUG", "-march=native", "-std=c++17"]);
    for f in flags {
        cmd.args(f.split(' '));
    }
    cmd.arg(&src).arg("-o").arg(&exe);
    match cmd.output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => return Probe::CannotRun(format!("compile failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => return Probe::CannotRun(format!("cannot run {cxx}: {e}")),
    }
    let out = match Command::new(&exe).output() {
        Ok(o) => o,
        Err(e) => return Probe::CannotRun(format!("cannot run the probe: {e}")),
    };
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match out.status.code() {
        Some(0) => Probe::Passed,
        Some(3) => Probe::CannotRun(printed),
        Some(code) => Probe::Failed(format!("exit {code}: {printed}")),
        None => {
            use std::os::unix::process::ExitStatusExt;
            Probe::Failed(format!("killed by signal {}", out.status.signal().unwrap_or(0)))
        }
    }
}
