//! Tell rustc which libraries to link, in dependency order.

use crate::cmake_build::Built;
use crate::features::Selection;
use crate::toolchain::Toolchain;

pub fn emit(built: &Built, features: &Selection, tools: &Toolchain) {
    let dynamic = features.has("dynamic-link");
    let kind = if dynamic { "dylib" } else { "static" };
    for dir in &built.lib_dirs {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    // llama -> ggml -> backends -> ggml-base
    let mut libs = vec!["llama".to_string(), "ggml".to_string()];
    libs.extend(backend_libs(&built.lib_dirs, dynamic));
    libs.push("ggml-base".into());
    for lib in &libs {
        println!("cargo:rustc-link-lib={kind}={lib}");
    }
    if dynamic {
        // Lets this crate's own tests run; dependents read DEP_LLAMA_LIB_DIR (or LD_LIBRARY_PATH).
        for dir in &built.lib_dirs {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
    }
    if let Some(dir) = built.lib_dirs.first() {
        println!("cargo:lib_dir={}", dir.display());
    }
    println!("cargo:include={}", built.prefix.join("include").display());

    let target = crate::env::cargo("TARGET");
    if !dynamic {
        if target.contains("apple") {
            println!("cargo:rustc-link-lib=dylib=c++");
            println!("cargo:rustc-link-lib=framework=Foundation");
            println!("cargo:rustc-link-lib=framework=Accelerate");
            println!("cargo:rustc-link-lib=framework=Metal");
            println!("cargo:rustc-link-lib=framework=MetalKit");
        } else if !target.contains("msvc") {
            println!("cargo:rustc-link-lib=dylib=stdc++");
        }
        if features.has("openmp") {
            let compiler = &built.compiler;
            let omp = if compiler.starts_with("GNU") { "gomp" } else { "omp" };
            println!("cargo:rustc-link-lib=dylib={omp}");
        }
        if let Some(cuda) = &tools.cuda {
            for dir in &cuda.lib_dirs {
                println!("cargo:rustc-link-search=native={}", dir.display());
            }
            // The runtime statically: the binary then needs only the driver, which the static
            // runtime loads itself (dlopen) when the first CUDA call is made. cuBLAS stays
            // dynamic: its static archives are hundreds of MB (docs/gpu.md).
            println!("cargo:rustc-link-lib=static=cudart_static");
            for lib in ["cublas", "cublasLt"] {
                println!("cargo:rustc-link-lib=dylib={lib}");
            }
            if features.effective("GGML_CUDA_NO_VMM").as_deref() != Some("ON") {
                // ggml's VMM pool calls the driver API directly: libcuda becomes a load-time need.
                for dir in &cuda.lib_dirs {
                    let stubs = dir.join("stubs");
                    if stubs.is_dir() {
                        println!("cargo:rustc-link-search=native={}", stubs.display());
                    }
                }
                println!("cargo:rustc-link-lib=dylib=cuda");
            }
            for lib in ["dl", "rt", "pthread"] {
                println!("cargo:rustc-link-lib=dylib={lib}");
            }
        }
        if features.has("vulkan") {
            println!("cargo:rustc-link-lib=dylib=vulkan");
        }
        if features.has("sycl") {
            for lib in ["sycl", "OpenCL", "mkl_core", "mkl_sycl_blas", "mkl_intel_ilp64", "mkl_tbb_thread", "dnnl"] {
                println!("cargo:rustc-link-lib=dylib={lib}");
            }
        }
    }
}

/// Backend libraries the build produced (`libggml-cpu`, `libggml-cuda`, ...), excluding ggml-base.
fn backend_libs(dirs: &[std::path::PathBuf], dynamic: bool) -> Vec<String> {
    let ext = if dynamic { ".so" } else { ".a" };
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(stem) = name.strip_prefix("lib").and_then(|n| n.strip_suffix(ext)) {
                if stem.starts_with("ggml-") && stem != "ggml-base" && !found.contains(&stem.to_string()) {
                    found.push(stem.to_string());
                }
            }
        }
    }
    // CPU first, so its symbols resolve before any backend that falls back to it.
    found.sort_by_key(|s| (s != "ggml-cpu", s.clone()));
    found
}
