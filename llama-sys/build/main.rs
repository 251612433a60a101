//! Build script for `llama-sys`: locate llama.cpp, configure and build it with CMake, generate
//! bindings, link, and export build information.
//!
//! Split into one module per step, like libsqlite3-sys / openssl-sys.

mod amx;
mod bindings;
mod cmake_build;
mod env;
mod features;
mod info;
mod link;
mod source;
mod toolchain;

use std::path::PathBuf;

fn main() {
    let out_dir = PathBuf::from(env::cargo("OUT_DIR"));
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-changed=wrapper.h");

    let features = features::Selection::from_cargo();
    let tools = toolchain::check(&features, &out_dir);

    let src = source::locate(&out_dir);
    src.emit_rerun_if_changed();

    let amx = amx::decide(&features, &out_dir);
    let built = cmake_build::build(&src, &features, &amx, &tools);
    bindings::generate(&built, &out_dir);
    link::emit(&built, &features, &tools);
    info::write(&src, &built, &features, &amx, &tools, &out_dir);
    info::write_reference_args(&built, &out_dir);
}
