//! Early, actionable failures when a tool the build needs is missing.

use crate::env;
use crate::features::Selection;
use std::path::{Path, PathBuf};
use std::process::Command;

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
}

fn fail(what: &str, fix: &str) -> ! {
    panic!("\n\nllama-sys: {what}\n  fix: {fix}\n\n")
}

/// What the checks found that later steps need.
pub struct Toolchain {
    /// The CUDA toolkit, when feature `cuda` is on.
    pub cuda: Option<CudaToolkit>,
}

/// Checks every tool the selected features need; panics with a fix when one is missing.
pub fn check(features: &Selection, out_dir: &Path) -> Toolchain {
    let cmake = env::var("CMAKE").unwrap_or_else(|| "cmake".into());
    if !runs(&cmake, "--version") {
        fail(
            "CMake is required to build llama.cpp and was not found.",
            "sudo apt-get install -y cmake   (or set CMAKE=/path/to/cmake)",
        );
    }
    let cuda = features.has("cuda").then(|| cuda_toolkit(features, &cmake, out_dir));
    if !features.has("sycl") {
        let cxx = env::var("CXX").unwrap_or_else(|| "c++".into());
        if !runs(&cxx, "--version") && !runs("g++", "--version") && !runs("clang++", "--version") {
            fail(
                "a C++17 compiler is required to build llama.cpp and none was found.",
                "sudo apt-get install -y g++   (or set CXX=/path/to/clang++)",
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
    Toolchain { cuda }
}

/// The CUDA toolkit the build compiles and links with.
pub struct CudaToolkit {
    /// Absolute path of nvcc.
    pub nvcc: PathBuf,
    /// Toolkit root: `bin/nvcc`, `include/` and the library directories below it.
    pub root: PathBuf,
    /// Release from `nvcc --version`, e.g. `13.0.88`.
    pub version: String,
    /// Directories holding the toolkit's libraries.
    pub lib_dirs: Vec<PathBuf>,
}

const CUDA_FROM_PYPI: &str = "or run scripts/build-cuda.sh, which installs NVIDIA's compiler and libraries from \
                              PyPI into target/ and builds benchkit with them";

/// The first CMake release whose CUDA support llama.cpp's ggml-cuda accepts.
const CMAKE_MIN_FOR_CUDA: (u32, u32) = (3, 18);

fn cuda_toolkit(features: &Selection, cmake: &str, out_dir: &Path) -> CudaToolkit {
    let cmake_version = Command::new(cmake)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| parse_cmake_version(&String::from_utf8_lossy(&o.stdout)));
    if let Some((major, minor)) = cmake_version.filter(|v| *v < CMAKE_MIN_FOR_CUDA) {
        fail(
            &format!(
                "feature `cuda` needs CMake >= {}.{} (ggml-cuda's CMakeLists), found {major}.{minor}.",
                CMAKE_MIN_FOR_CUDA.0, CMAKE_MIN_FOR_CUDA.1
            ),
            "pip install --user cmake (a current CMake), or set CMAKE=/path/to/newer/cmake",
        );
    }

    let cuda_path = env::var("CUDA_PATH");
    // An explicit choice must work; only the defaults are searched.
    let nvcc = if let Some(cxx) = env::var("CUDACXX") {
        let nvcc = which(&cxx).unwrap_or_else(|| PathBuf::from(&cxx));
        if let Err(e) = nvcc_version(&nvcc) {
            fail(
                &format!("CUDACXX={cxx} does not run: {e}"),
                &format!("point CUDACXX at a working nvcc, {CUDA_FROM_PYPI}"),
            );
        }
        nvcc
    } else if let Some(root) = &cuda_path {
        let nvcc = Path::new(root).join("bin/nvcc");
        if let Err(e) = nvcc_version(&nvcc) {
            fail(
                &format!("CUDA_PATH={root} holds no working bin/nvcc: {e}"),
                &format!("point CUDA_PATH at a CUDA toolkit root (the folder with bin/nvcc), {CUDA_FROM_PYPI}"),
            );
        }
        nvcc
    } else {
        let found =
            ["nvcc", "/usr/local/cuda/bin/nvcc"].iter().filter_map(|c| which(c)).find(|p| nvcc_version(p).is_ok());
        found.unwrap_or_else(|| {
            fail(
                "feature `cuda` needs the CUDA toolkit (nvcc), which was not found (looked at CUDACXX, CUDA_PATH, \
                 PATH and /usr/local/cuda).",
                &format!(
                    "install the CUDA toolkit and put nvcc on PATH or set CUDA_PATH to its root, {CUDA_FROM_PYPI}"
                ),
            )
        })
    };
    let version = nvcc_version(&nvcc).unwrap_or_default();
    let root = match &cuda_path {
        Some(p) => PathBuf::from(p),
        None => {
            let real = nvcc.canonicalize().unwrap_or_else(|_| nvcc.clone());
            real.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default()
        }
    };
    let lib_dirs = cuda_lib_dirs(&root);
    probe_nvcc(&nvcc, out_dir);

    if !features.has("dynamic-link") {
        // What link.rs names: the runtime statically, cuBLAS dynamically (docs/gpu.md says why).
        for (file, what) in [
            ("libcudart_static.a", "the static CUDA runtime (nvidia-cuda-runtime)"),
            ("libcublas.so", "cuBLAS (nvidia-cublas)"),
            ("libcublasLt.so", "cuBLASLt (nvidia-cublas)"),
        ] {
            if !lib_dirs.iter().any(|d| d.join(file).exists()) {
                fail(
                    &format!(
                        "the CUDA toolkit at {} lacks {file}, {what}; searched: {}.",
                        root.display(),
                        display_dirs(&lib_dirs, &root)
                    ),
                    &format!(
                        "install the toolkit's libraries (a wheel's lib/ holds only libX.so.N: link libX.so to it), \
                         {CUDA_FROM_PYPI}"
                    ),
                );
            }
        }
    }
    CudaToolkit { nvcc, root, version, lib_dirs }
}

fn display_dirs(dirs: &[PathBuf], root: &Path) -> String {
    if dirs.is_empty() {
        return format!("no lib64/, lib/ or targets/*/lib/ under {}", root.display());
    }
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Library directories of a toolkit root, in the order a linker should search them.
pub fn cuda_lib_dirs(root: &Path) -> Vec<PathBuf> {
    let target = if cfg!(target_arch = "aarch64") { "sbsa-linux" } else { "x86_64-linux" };
    ["lib64".to_string(), "lib".to_string(), format!("targets/{target}/lib"), "lib/x86_64-linux-gnu".to_string()]
        .iter()
        .map(|d| root.join(d))
        .filter(|d| d.is_dir())
        .collect()
}

/// Compiles an empty kernel, so that a toolkit missing cicc, headers or a supported host
/// compiler fails here with nvcc's own words rather than deep inside CMake.
fn probe_nvcc(nvcc: &Path, out_dir: &Path) {
    let dir = out_dir.join("nvcc-probe");
    std::fs::create_dir_all(&dir).expect("llama-sys: cannot create OUT_DIR/nvcc-probe");
    let src = dir.join("probe.cu");
    std::fs::write(&src, "#include <cuda_runtime.h>\n__global__ void k(int *p) { *p = 1; }\n")
        .expect("llama-sys: cannot write the nvcc probe");
    let mut cmd = Command::new(nvcc);
    cmd.arg("-c").arg(&src).arg("-o").arg(dir.join("probe.o"));
    if let Some(arch) = env::var("CUDA_ARCHITECTURES").as_deref().and_then(first_real_arch) {
        cmd.arg(format!("-arch=sm_{arch}"));
    }
    // CMake hands nvcc this host compiler; NVCC_CCBIN, nvcc reads itself.
    if let Some(host) = env::var("CUDAHOSTCXX") {
        cmd.arg("-ccbin").arg(host);
    }
    match cmd.output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = err.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
            fail(
                &format!("{} cannot compile a CUDA kernel:\n    {}", nvcc.display(), tail.join("\n    ")),
                "an unsupported host compiler: set NVCC_CCBIN (or CUDAHOSTCXX) to a g++ nvcc supports; a missing \
                 header or cicc: the toolkit is incomplete (nvidia-cuda-crt, nvidia-nvvm and nvidia-cuda-cccl \
                 complete PyPI's nvcc; scripts/build-cuda.sh installs them)",
            );
        }
        Err(e) => fail(&format!("cannot run {}: {e}", nvcc.display()), "check that nvcc is executable"),
    }
}

/// `90` from `90`, `90-real`, `90a;120a-real`; none for `native`/`all`.
fn first_real_arch(archs: &str) -> Option<String> {
    let first = archs.split([';', ',']).next()?.trim();
    let num = first.split('-').next()?;
    (num.chars().next()?.is_ascii_digit()).then(|| num.to_string())
}

/// `13.0.88` from nvcc's `Cuda compilation tools, release 13.0, V13.0.88`.
pub fn parse_nvcc_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("release "))?;
    if let Some((_, v)) = line.rsplit_once(", V") {
        return Some(v.trim().to_string());
    }
    let rest = line.split("release ").nth(1)?;
    Some(rest.split(',').next()?.trim().to_string())
}

fn parse_cmake_version(text: &str) -> Option<(u32, u32)> {
    let v = text.lines().next()?.split_whitespace().nth(2)?;
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

fn nvcc_version(nvcc: &Path) -> Result<String, String> {
    match Command::new(nvcc).arg("--version").output() {
        Ok(o) if o.status.success() => parse_nvcc_version(&String::from_utf8_lossy(&o.stdout))
            .ok_or_else(|| format!("`{} --version` named no release", nvcc.display())),
        Ok(o) => Err(format!("`{} --version` failed: {}", nvcc.display(), String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("cannot run {}: {e}", nvcc.display())),
    }
}

/// `program` as an absolute path: itself when it has a slash, else the first hit on PATH.
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then(|| std::path::absolute(&p).unwrap_or(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}
