//! Where the llama.cpp source comes from, in this order:
//! 1. `LLAMA_CPP_DIR`: any checkout or release of llama.cpp (users benchmark specific commits);
//! 2. a checkout placed in `vendor/llama.cpp/` at the workspace root;
//! 3. the pinned default: the llama.cpp tree shipped inside the crates.io package
//!    `llama-cpp-sys-2`, fetched through cargo with a nested `cargo metadata`.

use crate::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates.io package whose llama.cpp tree is the default source.
pub const PINNED_PACKAGE: &str = "llama-cpp-sys-2";
pub const PINNED_VERSION: &str = "0.1.161";

pub enum Origin {
    EnvDir,
    Vendor,
    Pinned,
}

impl Origin {
    pub fn as_str(&self) -> &'static str {
        match self {
            Origin::EnvDir => "LLAMA_CPP_DIR",
            Origin::Vendor => "vendor",
            Origin::Pinned => "crates.io",
        }
    }
}

pub struct Source {
    pub dir: PathBuf,
    pub origin: Origin,
    /// Short git commit, when the source is a git checkout of its own.
    pub commit: Option<String>,
    /// llama.cpp's build number (commit count), when known.
    pub build_number: Option<u64>,
    /// Uncommitted changes to tracked files in the checkout.
    pub dirty: bool,
    /// "llama-cpp-sys-2 0.1.161" for the pinned source.
    pub package: Option<String>,
}

pub fn locate(out_dir: &Path) -> Source {
    let manifest_dir = PathBuf::from(env::cargo("CARGO_MANIFEST_DIR"));
    if let Some(dir) = env::var("LLAMA_CPP_DIR") {
        let dir = PathBuf::from(dir);
        check_tree(&dir, "LLAMA_CPP_DIR");
        return from_dir(dir, Origin::EnvDir);
    }
    let vendor = manifest_dir.join("../vendor/llama.cpp");
    if vendor.join("CMakeLists.txt").is_file() {
        check_tree(&vendor, "vendor/llama.cpp");
        return from_dir(vendor, Origin::Vendor);
    }
    pinned(out_dir)
}

fn check_tree(dir: &Path, what: &str) {
    for needed in ["CMakeLists.txt", "include/llama.h", "ggml/include/ggml.h"] {
        if !dir.join(needed).is_file() {
            panic!(
                "llama-sys: {what} = {} is not a llama.cpp source tree ({needed} is missing).\n\
                 Point it at a checkout: git clone https://github.com/ggml-org/llama.cpp && \
                 LLAMA_CPP_DIR=$PWD/llama.cpp cargo build",
                dir.display()
            );
        }
    }
}

fn from_dir(dir: PathBuf, origin: Origin) -> Source {
    let dir = dir.canonicalize().unwrap_or(dir);
    let (commit, build_number, dirty) = git_info(&dir).unwrap_or((None, None, false));
    Source { dir, origin, commit, build_number, dirty, package: None }
}

/// Git facts about `dir`, only when `dir` is the top of its own checkout (an extracted release
/// inside another repository must not report that repository's commit).
fn git_info(dir: &Path) -> Option<(Option<String>, Option<u64>, bool)> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let count = git(&["rev-list", "--count", "HEAD"]).and_then(|c| c.parse().ok());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    println!("cargo:rerun-if-changed={}", dir.join(".git/HEAD").display());
    Some((commit, count, dirty))
}

/// Resolves the pinned crates.io package through cargo (which downloads it into the registry
/// cache, or finds it there) and returns its bundled llama.cpp tree.
fn pinned(out_dir: &Path) -> Source {
    let probe = out_dir.join("pinned-source");
    std::fs::create_dir_all(probe.join("src")).expect("llama-sys: cannot create OUT_DIR/pinned-source");
    let manifest = format!(
        "[package]\nname = \"llama-sys-pinned-source\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\n{PINNED_PACKAGE} = {{ version = \"={PINNED_VERSION}\", default-features = false }}\n\n\
         # not part of any enclosing workspace\n[workspace]\n"
    );
    std::fs::write(probe.join("Cargo.toml"), manifest).expect("llama-sys: cannot write probe manifest");
    std::fs::write(probe.join("src/lib.rs"), "").expect("llama-sys: cannot write probe lib.rs");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(probe.join("Cargo.toml"))
            .env_remove("CARGO_TARGET_DIR")
            .env("CARGO_TARGET_DIR", probe.join("target"));
        if offline {
            cmd.arg("--offline");
        }
        cmd.output()
    };
    let out = match run(true) {
        Ok(o) if o.status.success() => o,
        _ => match run(false) {
            Ok(o) if o.status.success() => o,
            Ok(o) => panic!(
                "llama-sys: could not fetch the default llama.cpp source ({PINNED_PACKAGE} {PINNED_VERSION} from crates.io):\n{}\n\
                 Without network access, point LLAMA_CPP_DIR at a llama.cpp checkout or place one in vendor/llama.cpp.",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("llama-sys: cannot run `{cargo} metadata`: {e}"),
        },
    };
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("llama-sys: `cargo metadata` printed invalid JSON");
    let manifest_path = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == PINNED_PACKAGE && p["version"] == PINNED_VERSION)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("llama-sys: `cargo metadata` did not list {PINNED_PACKAGE} {PINNED_VERSION}"));
    let dir = Path::new(manifest_path).parent().unwrap().join("llama.cpp");
    check_tree(&dir, PINNED_PACKAGE);
    Source {
        dir,
        origin: Origin::Pinned,
        commit: None,
        build_number: None,
        dirty: false,
        package: Some(format!("{PINNED_PACKAGE} {PINNED_VERSION}")),
    }
}

impl Source {
    pub fn emit_rerun_if_changed(&self) {
        // The pinned package is immutable; a user's checkout is watched where code lives.
        if matches!(self.origin, Origin::Pinned) {
            return;
        }
        for sub in ["CMakeLists.txt", "include", "src", "ggml/include", "ggml/src", "ggml/CMakeLists.txt"] {
            println!("cargo:rerun-if-changed={}", self.dir.join(sub).display());
        }
    }

    /// A one-line description: "llama.cpp b1234 (abcdef12)" or "llama-cpp-sys-2 0.1.161".
    pub fn describe(&self) -> String {
        match (&self.package, &self.commit, self.build_number) {
            (Some(p), _, _) => format!("llama.cpp from crates.io package {p}"),
            (None, Some(c), Some(n)) => {
                format!("llama.cpp b{n} ({c}{})", if self.dirty { ", dirty" } else { "" })
            }
            (None, Some(c), None) => format!("llama.cpp {c}"),
            _ => format!("llama.cpp at {} (not a git checkout)", self.dir.display()),
        }
    }
}
