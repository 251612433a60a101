//! Early, actionable failures when a tool the build needs is missing.

use crate::env;
use crate::features::Selection;
use std::path::Path;
use std::process::Command;

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
}

fn fail(what: &str, fix: &str) -> ! {
    panic!("\n\nllama-sys: {what}\n  fix: {fix}\n\n")
}

pub fn check(features: &Selection) {
    let cmake = env::var("CMAKE").unwrap_or_else(|| "cmake".into());
    if !runs(&cmake, "--version") {
        fail(
            "CMake is required to build llama.cpp and was not found.",
            "sudo apt-get install -y cmake   (or set CMAKE=/path/to/cmake)",
        );
    }
    if !features.has("sycl") {
        let cxx = env::var("CXX").unwrap_or_else(|| "c++".into());
        if !runs(&cxx, "--version") && !runs("g++", "--version") && !runs("clang++", "--version") {
            fail(
                "a C++17 compiler is required to build llama.cpp and none was found.",
                "sudo apt-get install -y g++   (or set CXX=/path/to/clang++)",
            );
        }
    }
    if features.has("cuda") {
        let nvcc_env = env::var("CUDACXX");
        let cuda_path = env::var("CUDA_PATH").unwrap_or_else(|| "/usr/local/cuda".into());
        let found = nvcc_env.as_deref().is_some_and(|p| runs(p, "--version"))
            || runs("nvcc", "--version")
            || runs(&format!("{cuda_path}/bin/nvcc"), "--version");
        if !found {
            fail(
                "feature `cuda` needs the CUDA toolkit (nvcc), which was not found.",
                "install the CUDA toolkit (https://developer.nvidia.com/cuda-downloads, or \
                 `sudo apt-get install -y nvidia-cuda-toolkit`) and put nvcc on PATH or set CUDACXX / CUDA_PATH",
            );
        }
    }
    if features.has("sycl") && !runs("icpx", "--version") {
        fail(
            "feature `sycl` needs Intel's oneAPI DPC++ compilers (icx/icpx), which were not found.",
            "install the Intel oneAPI Base Toolkit, then `source /opt/intel/oneapi/setvars.sh` before cargo build",
        );
    }
    if features.has("vulkan") {
        let has_headers = Path::new("/usr/include/vulkan/vulkan.h").exists() || env::var("VULKAN_SDK").is_some();
        if !runs("glslc", "--version") || !has_headers {
            fail(
                "feature `vulkan` needs the Vulkan headers, loader and the glslc shader compiler.",
                "sudo apt-get install -y libvulkan-dev glslc   (or install the LunarG SDK and set VULKAN_SDK)",
            );
        }
    }
}
