//! The one place where cargo features become CMake definitions.

use crate::env;

/// A cargo feature and the CMake definitions it maps to, when on and when off.
pub struct Feature {
    pub name: &'static str,
    /// Backend name reported in build info when the feature is on.
    pub backend: Option<&'static str>,
    pub on: &'static [(&'static str, &'static str)],
    pub off: &'static [(&'static str, &'static str)],
}

pub const FEATURES: &[Feature] = &[
    Feature { name: "native", backend: None, on: &[("GGML_NATIVE", "ON")], off: &[("GGML_NATIVE", "OFF")] },
    Feature { name: "openmp", backend: None, on: &[("GGML_OPENMP", "ON")], off: &[("GGML_OPENMP", "OFF")] },
    // No VMM pool: it is the one user of the driver API (libcuda) in ggml-cuda, and linking
    // libcuda would stop the binary from starting where no driver is installed (docs/gpu.md).
    // `LLAMA_SYS_CMAKE_DEFINES=GGML_CUDA_NO_VMM=OFF` restores it; libcuda is then linked.
    Feature {
        name: "cuda",
        backend: Some("CUDA"),
        on: &[("GGML_CUDA", "ON"), ("GGML_CUDA_NO_VMM", "ON")],
        off: &[("GGML_CUDA", "OFF")],
    },
    Feature {
        name: "sycl",
        backend: Some("SYCL"),
        on: &[("GGML_SYCL", "ON"), ("CMAKE_C_COMPILER", "icx"), ("CMAKE_CXX_COMPILER", "icpx")],
        off: &[("GGML_SYCL", "OFF")],
    },
    Feature { name: "vulkan", backend: Some("Vulkan"), on: &[("GGML_VULKAN", "ON")], off: &[("GGML_VULKAN", "OFF")] },
    Feature { name: "rpc", backend: Some("RPC"), on: &[("GGML_RPC", "ON")], off: &[("GGML_RPC", "OFF")] },
    Feature {
        name: "dynamic-link",
        backend: None,
        on: &[("BUILD_SHARED_LIBS", "ON")],
        off: &[("BUILD_SHARED_LIBS", "OFF")],
    },
];

/// Definitions that do not depend on features: only the libraries, nothing upstream ships
/// around them (tests, tools, server, HTTP clients).
pub const FIXED: &[(&str, &str)] = &[
    ("LLAMA_BUILD_TESTS", "OFF"),
    ("LLAMA_BUILD_EXAMPLES", "OFF"),
    ("LLAMA_BUILD_TOOLS", "OFF"),
    ("LLAMA_BUILD_SERVER", "OFF"),
    ("LLAMA_BUILD_COMMON", "OFF"),
    ("LLAMA_BUILD_APP", "OFF"),
    ("LLAMA_OPENSSL", "OFF"),
    ("LLAMA_CURL", "OFF"),
    ("LLAMA_ALL_WARNINGS", "OFF"),
    ("GGML_BUILD_TESTS", "OFF"),
    ("GGML_BUILD_EXAMPLES", "OFF"),
    ("GGML_BLAS", "OFF"),
    ("GGML_CCACHE", "ON"),
    ("CMAKE_POSITION_INDEPENDENT_CODE", "ON"),
    ("CMAKE_INSTALL_LIBDIR", "lib"),
];

/// The features enabled for this build.
pub struct Selection {
    pub enabled: Vec<&'static Feature>,
    /// Extra `-D` definitions from `LLAMA_SYS_CMAKE_DEFINES` ("K=V;K2=V2").
    pub user_defines: Vec<(String, String)>,
}

impl Selection {
    pub fn from_cargo() -> Self {
        let user_defines: Vec<(String, String)> = env::var("LLAMA_SYS_CMAKE_DEFINES")
            .map(|s| {
                s.split(';')
                    .filter(|kv| !kv.trim().is_empty())
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                        None => panic!(
                            "llama-sys: LLAMA_SYS_CMAKE_DEFINES entry {kv:?} is not KEY=VALUE \
                             (example: LLAMA_SYS_CMAKE_DEFINES='GGML_CUDA_F16=ON;CMAKE_CUDA_ARCHITECTURES=90')"
                        ),
                    })
                    .collect()
            })
            .unwrap_or_default();
        // `GGML_NATIVE=OFF` also turns feature `native` off: it is on through benchkit's default
        // features, which a portable build (scripts/build-cuda.sh) cannot switch off.
        let native_off = user_defines.iter().any(|(k, v)| k == "GGML_NATIVE" && v.eq_ignore_ascii_case("OFF"));
        let enabled = FEATURES.iter().filter(|f| env::feature(f.name) && !(native_off && f.name == "native")).collect();
        Selection { enabled, user_defines }
    }

    pub fn has(&self, name: &str) -> bool {
        self.enabled.iter().any(|f| f.name == name)
    }

    /// All CMake definitions, in the order they are applied (later wins).
    pub fn defines(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = FIXED.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for f in FEATURES {
            let set = if self.has(f.name) { f.on } else { f.off };
            out.extend(set.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        }
        if let Some(arch) = env::var("CUDA_ARCHITECTURES") {
            out.push(("CMAKE_CUDA_ARCHITECTURES".into(), arch));
        }
        out.extend(self.user_defines.iter().cloned());
        out
    }

    /// The value CMake ends up with for `key` (the last definition wins).
    pub fn effective(&self, key: &str) -> Option<String> {
        self.defines().into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether the user's `LLAMA_SYS_CMAKE_DEFINES` sets `key`.
    pub fn user_sets(&self, key: &str) -> bool {
        self.user_defines.iter().any(|(k, _)| k == key)
    }

    /// Backends compiled in, CPU first.
    pub fn backends(&self) -> Vec<&'static str> {
        let mut b = vec!["CPU"];
        b.extend(self.enabled.iter().filter_map(|f| f.backend));
        b
    }
}
