//! One result record: llama-bench's fields (same names, same order), plus benchkit's own.

use serde::{Deserialize, Serialize};

/// How a grid point ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Measured.
    Ok,
    /// Failed; `error` says why. The sweep went on.
    Failed,
    /// The worker process measuring it died (signal, abort, OOM kill); `crash` says how.
    Crashed,
    /// It ran past the per-trial timeout and its worker was killed; `crash` says where.
    Timeout,
}

impl Status {
    /// Measured, with results.
    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }

    /// The name records carry: `ok`, `failed`, `crashed`, `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Crashed => "crashed",
            Status::Timeout => "timeout",
        }
    }
}

/// One measured (or failed) test, with everything needed to reproduce and compare it.
///
/// The fields up to `samples_ts` are llama-bench's, in llama-bench's order, with its names and
/// types, so its scripts (`compare-llama-bench.py`) and dashboards read benchkit's output
/// unchanged. The fields after them are benchkit's additions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRecord {
    /// llama.cpp commit (`unknown` outside a git checkout).
    pub build_commit: String,
    /// llama.cpp build number (0 when unknown).
    pub build_number: u64,
    /// CPU model.
    pub cpu_info: String,
    /// GPU models.
    pub gpu_info: String,
    /// Backends compiled in, comma separated.
    pub backends: String,
    /// Model path as given.
    pub model_filename: String,
    /// llama.cpp's model description, e.g. `gemma3 270M Q4_K - Medium`.
    pub model_type: String,
    /// Weights size in bytes.
    pub model_size: u64,
    /// Parameters.
    pub model_n_params: u64,
    /// Logical batch.
    pub n_batch: u32,
    /// Physical batch.
    pub n_ubatch: u32,
    /// Threads.
    pub n_threads: u32,
    /// CPU mask (`0x0` = default affinity).
    pub cpu_mask: String,
    /// Strict placement.
    pub cpu_strict: bool,
    /// Poll level.
    pub poll: u32,
    /// K cache type.
    pub type_k: String,
    /// V cache type.
    pub type_v: String,
    /// GPU layers.
    pub n_gpu_layers: i32,
    /// Layers whose expert (MoE) tensors are kept on the CPU (`-ncmoe`).
    pub n_cpu_moe: i32,
    /// Split mode.
    pub split_mode: String,
    /// Main GPU.
    pub main_gpu: i32,
    /// KV cache kept on the host.
    pub no_kv_offload: bool,
    /// Flash attention: -1 auto, 0 off, 1 on (llama-bench writes the number).
    pub flash_attn: i32,
    /// Offload devices: `auto`, `none`, or names joined by `/`.
    pub devices: String,
    /// Tensor split, `0.00` style, `/` separated.
    pub tensor_split: String,
    /// Tensor buffer-type overrides as given to `-ot`: `none`, or `pattern=buffer_type` items
    /// joined by `;` (`-ncmoe`'s are not listed here).
    pub tensor_buft_overrides: String,
    /// llama.cpp load mode: `auto`, `none`, `mmap`, `mlock`, `mmap+mlock` or `dio`.
    pub load_mode: String,
    /// Lazy tensor loading: `on`, `auto` or `off`.
    pub lazy_mode: String,
    /// Embeddings mode.
    pub embeddings: bool,
    /// Host tensor ops kept on the host, `-nopo` (llama-bench types it as an integer, 0/1).
    pub no_op_offload: i32,
    /// Host buffer bypassed (`--no-host`).
    pub no_host: bool,
    /// Weight repacking into extra buffer types (`--repack`).
    pub repack: bool,
    /// MiB the fit leaves free per device, `-fitt` (0: no fit).
    pub fit_target: i64,
    /// Smallest context the fit may choose, `-fitc` (0: no fit).
    pub fit_min_ctx: i64,
    /// Prompt tokens.
    pub n_prompt: u32,
    /// Generated tokens.
    pub n_gen: u32,
    /// Depth (tokens in the cache before timing).
    pub n_depth: u32,
    /// Start time of the test, RFC 3339 UTC.
    pub test_time: String,
    /// Mean duration per repetition, ns.
    pub avg_ns: u64,
    /// Sample standard deviation of durations, ns.
    pub stddev_ns: u64,
    /// Mean tokens/s.
    pub avg_ts: f64,
    /// Sample standard deviation of tokens/s.
    pub stddev_ts: f64,
    /// Duration of each repetition, ns.
    pub samples_ns: Vec<u64>,
    /// Tokens/s of each repetition.
    pub samples_ts: Vec<f64>,

    // ---- benchkit's additions ----
    /// `ok`, `failed`, `crashed` or `timeout`.
    pub status: Status,
    /// Why the point failed.
    pub error: Option<String>,
    /// How its worker process ended, for `crashed` and `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<crate::supervise::CrashReport>,
    /// Test name as llama-bench's table shows it: `pp512`, `tg128`, `pp512+tg128`, `... @ d512`.
    pub test: String,
    /// Repetitions requested.
    pub repetitions: u32,
    /// Warmup run done.
    pub warmup: bool,
    /// Thread priority (llama-bench `--prio`).
    pub prio: i32,
    /// Context size used.
    pub n_ctx: u32,
    /// Seed of the random prompt tokens.
    pub seed: u64,
    /// Model file size in bytes.
    pub model_file_bytes: u64,
    /// Model architecture.
    pub model_arch: String,
    /// Build, machine, start of the sweep, seeds, model and every setting: the provenance
    /// every benchkit result carries.
    pub provenance: crate::Provenance,
}

/// llama-bench's field names, in its order (md/csv/sql columns, json keys before the samples).
pub const LLAMA_BENCH_FIELDS: &[&str] = &[
    "build_commit",
    "build_number",
    "cpu_info",
    "gpu_info",
    "backends",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "n_batch",
    "n_ubatch",
    "n_threads",
    "cpu_mask",
    "cpu_strict",
    "poll",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "n_cpu_moe",
    "split_mode",
    "main_gpu",
    "no_kv_offload",
    "flash_attn",
    "devices",
    "tensor_split",
    "tensor_buft_overrides",
    "load_mode",
    "lazy_mode",
    "embeddings",
    "no_op_offload",
    "no_host",
    "repack",
    "fit_target",
    "fit_min_ctx",
    "n_prompt",
    "n_gen",
    "n_depth",
    "test_time",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
];

/// Column type of a llama-bench field, as its json/sql writers type it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Text.
    String,
    /// 0/1 in text formats, true/false in JSON.
    Bool,
    /// Integer.
    Int,
    /// Float.
    Float,
}

/// llama-bench's type for a field.
pub fn field_type(field: &str) -> FieldType {
    match field {
        "build_number" | "n_batch" | "n_ubatch" | "n_threads" | "poll" | "model_size" | "model_n_params"
        | "n_gpu_layers" | "main_gpu" | "n_prompt" | "n_gen" | "n_depth" | "avg_ns" | "stddev_ns" | "no_op_offload"
        | "n_cpu_moe" | "fit_target" | "fit_min_ctx" | "flash_attn" => FieldType::Int,
        "no_kv_offload" | "cpu_strict" | "embeddings" | "no_host" | "repack" => FieldType::Bool,
        "avg_ts" | "stddev_ts" => FieldType::Float,
        _ => FieldType::String,
    }
}

impl BenchRecord {
    /// A llama-bench field's value as llama-bench prints it in text formats (bools as 0/1,
    /// floats with 6 decimals).
    pub fn value_str(&self, field: &str) -> String {
        let b = |v: bool| if v { "1" } else { "0" }.to_string();
        match field {
            "build_commit" => self.build_commit.clone(),
            "build_number" => self.build_number.to_string(),
            "cpu_info" => self.cpu_info.clone(),
            "gpu_info" => self.gpu_info.clone(),
            "backends" => self.backends.clone(),
            "model_filename" => self.model_filename.clone(),
            "model_type" => self.model_type.clone(),
            "model_size" => self.model_size.to_string(),
            "model_n_params" => self.model_n_params.to_string(),
            "n_batch" => self.n_batch.to_string(),
            "n_ubatch" => self.n_ubatch.to_string(),
            "n_threads" => self.n_threads.to_string(),
            "cpu_mask" => self.cpu_mask.clone(),
            "cpu_strict" => b(self.cpu_strict),
            "poll" => self.poll.to_string(),
            "type_k" => self.type_k.clone(),
            "type_v" => self.type_v.clone(),
            "n_gpu_layers" => self.n_gpu_layers.to_string(),
            "n_cpu_moe" => self.n_cpu_moe.to_string(),
            "split_mode" => self.split_mode.clone(),
            "main_gpu" => self.main_gpu.to_string(),
            "no_kv_offload" => b(self.no_kv_offload),
            "flash_attn" => self.flash_attn.to_string(),
            "devices" => self.devices.clone(),
            "tensor_split" => self.tensor_split.clone(),
            "tensor_buft_overrides" => self.tensor_buft_overrides.clone(),
            "load_mode" => self.load_mode.clone(),
            "lazy_mode" => self.lazy_mode.clone(),
            "embeddings" => b(self.embeddings),
            "no_op_offload" => self.no_op_offload.to_string(),
            "no_host" => b(self.no_host),
            "repack" => b(self.repack),
            "fit_target" => self.fit_target.to_string(),
            "fit_min_ctx" => self.fit_min_ctx.to_string(),
            "n_prompt" => self.n_prompt.to_string(),
            "n_gen" => self.n_gen.to_string(),
            "n_depth" => self.n_depth.to_string(),
            "test_time" => self.test_time.clone(),
            "avg_ns" => self.avg_ns.to_string(),
            "stddev_ns" => self.stddev_ns.to_string(),
            "avg_ts" => format!("{:.6}", self.avg_ts),
            "stddev_ts" => format!("{:.6}", self.stddev_ts),
            _ => String::new(),
        }
    }
}
