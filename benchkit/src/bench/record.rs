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
    /// The run was cancelled while it ran (or before it started); its worker was killed.
    Cancelled,
}

impl Status {
    /// Measured, with results.
    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }

    /// The name records carry: `ok`, `failed`, `crashed`, `timeout`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Crashed => "crashed",
            Status::Timeout => "timeout",
            Status::Cancelled => "cancelled",
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
    /// What the process and the machine did during the timed repetitions: CPU time and
    /// context switches, memory, energy (J per token: prompt tokens for pp, generated for tg),
    /// GPUs; each part measured or `{"unavailable": "<reason>"}`.
    #[serde(default)]
    pub telemetry: crate::telemetry::Telemetry,
    /// Build, machine, start of the sweep, seeds, model and every setting: the provenance
    /// every benchkit result carries.
    pub provenance: crate::Provenance,
}

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

/// A record field's type and text as llama-bench prints it (bools as 0/1, floats with 6
/// decimals): the field's Rust type decides both, so the table below cannot mistype one.
trait FieldValue {
    const TYPE: FieldType;
    fn text(&self) -> String;
}

impl FieldValue for String {
    const TYPE: FieldType = FieldType::String;
    fn text(&self) -> String {
        self.clone()
    }
}

impl FieldValue for bool {
    const TYPE: FieldType = FieldType::Bool;
    fn text(&self) -> String {
        if *self { "1" } else { "0" }.to_string()
    }
}

impl FieldValue for f64 {
    const TYPE: FieldType = FieldType::Float;
    fn text(&self) -> String {
        format!("{self:.6}")
    }
}

macro_rules! int_field_value {
    ($($t:ty),*) => {$(
        impl FieldValue for $t {
            const TYPE: FieldType = FieldType::Int;
            fn text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
int_field_value!(u32, u64, i32, i64);

const fn type_of<T: FieldValue>(_: fn(&BenchRecord) -> &T) -> FieldType {
    T::TYPE
}

/// One of llama-bench's fields: its name, its type, and its value as llama-bench prints it.
#[derive(Clone, Copy)]
pub struct Field {
    /// llama-bench's name (csv/sql column, json key).
    pub name: &'static str,
    /// Its type.
    pub ty: FieldType,
    text: fn(&BenchRecord) -> String,
}

impl Field {
    /// The field's value in `r`, as llama-bench prints it in text formats.
    pub fn value(&self, r: &BenchRecord) -> String {
        (self.text)(r)
    }
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field").field("name", &self.name).field("ty", &self.ty).finish()
    }
}

/// Both lists from one: the names for callers that want strings, the fields for the writers.
macro_rules! llama_bench_fields {
    ($($name:ident,)*) => {
        /// llama-bench's fields, in its order (md/csv/sql columns, json keys before the
        /// samples), each named after the [`BenchRecord`] field that holds it.
        pub const FIELDS: &[Field] = &[$(Field {
            name: stringify!($name),
            ty: type_of(|r: &BenchRecord| &r.$name),
            text: |r: &BenchRecord| FieldValue::text(&r.$name),
        }),*];
        /// llama-bench's field names, in its order.
        pub const LLAMA_BENCH_FIELDS: &[&str] = &[$(stringify!($name)),*];
    };
}

llama_bench_fields! {
    build_commit,
    build_number,
    cpu_info,
    gpu_info,
    backends,
    model_filename,
    model_type,
    model_size,
    model_n_params,
    n_batch,
    n_ubatch,
    n_threads,
    cpu_mask,
    cpu_strict,
    poll,
    type_k,
    type_v,
    n_gpu_layers,
    n_cpu_moe,
    split_mode,
    main_gpu,
    no_kv_offload,
    flash_attn,
    devices,
    tensor_split,
    tensor_buft_overrides,
    load_mode,
    lazy_mode,
    embeddings,
    no_op_offload,
    no_host,
    repack,
    fit_target,
    fit_min_ctx,
    n_prompt,
    n_gen,
    n_depth,
    test_time,
    avg_ns,
    stddev_ns,
    avg_ts,
    stddev_ts,
}

/// The llama-bench field called `name`.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// llama-bench's type for the field called `name`; `None` for a name llama-bench lacks.
pub fn field_type(name: &str) -> Option<FieldType> {
    field(name).map(|f| f.ty)
}

impl BenchRecord {
    /// Sets the record's telemetry, with J per token over the tokens of every repetition
    /// (prompt tokens for pp, generated tokens for tg, both for pp+tg).
    pub fn attach_telemetry(&mut self, mut telemetry: crate::telemetry::Telemetry) {
        if self.status.is_ok() {
            telemetry.per_token(self.test_spec().n_tokens() * u64::from(self.repetitions));
        }
        self.telemetry = telemetry;
    }

    /// The record's test (its `n_prompt`, `n_gen`, `n_depth`), named by [`Test::name`](super::Test::name).
    pub fn test_spec(&self) -> super::Test {
        super::Test { n_prompt: self.n_prompt, n_gen: self.n_gen, n_depth: self.n_depth }
    }

    /// A llama-bench field's value as llama-bench prints it in text formats (bools as 0/1,
    /// floats with 6 decimals); `None` for a name llama-bench lacks.
    pub fn value_str(&self, field: &str) -> Option<String> {
        self::field(field).map(|f| f.value(self))
    }
}
