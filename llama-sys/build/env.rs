//! Every environment variable the build reads goes through here, so that cargo re-runs the
//! build script when one of them changes.

/// Reads a user-facing environment variable (empty counts as unset) and registers it with
/// `rerun-if-env-changed`.
pub fn var(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads a variable that cargo always sets for build scripts.
pub fn cargo(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("llama-sys: cargo did not set {name}"))
}

/// Whether cargo feature `name` of this crate is enabled.
pub fn feature(name: &str) -> bool {
    let key = format!("CARGO_FEATURE_{}", name.to_uppercase().replace('-', "_"));
    std::env::var_os(key).is_some()
}
