//! llama-bench's markdown table: which columns it shows, their widths and cells.

use super::super::record::{field_type, BenchRecord, FieldType, Status};
use std::collections::BTreeSet;

/// llama-bench's optional markdown columns, in its order, each with llama-bench's default value
/// as its text formats write it (`None`: the default is machine-dependent, see `n_threads`).
/// A column is shown when the parameter takes several values in the run or its one value
/// differs from the default. `n_gpu_layers` is not here: llama-bench shows it for every
/// non-CPU backend, whatever its values.
pub(super) const MD_OPTIONAL: &[(&str, Option<&str>)] = &[
    ("n_cpu_moe", Some("0")),
    ("n_threads", None),
    ("cpu_mask", Some("0x0")),
    ("cpu_strict", Some("0")),
    ("poll", Some("50")),
    ("n_batch", Some("2048")),
    ("n_ubatch", Some("512")),
    ("type_k", Some("f16")),
    ("type_v", Some("f16")),
    ("main_gpu", Some("0")),
    ("split_mode", Some("layer")),
    ("no_kv_offload", Some("0")),
    ("flash_attn", Some("-1")),
    ("devices", Some("auto")),
    ("tensor_split", Some("0.00")),
    ("tensor_buft_overrides", Some("none")),
    ("load_mode", Some("auto")),
    ("lazy_mode", Some("auto")),
    ("embeddings", Some("0")),
    ("no_op_offload", Some("0")),
    ("no_host", Some("0")),
    ("repack", Some("1")),
    ("fit_target", Some("0")),
    ("fit_min_ctx", Some("0")),
];

/// Which columns the markdown table shows, chosen as llama-bench chooses them.
///
/// Always `model`, `size`, `params`, `backend`; then `ngl` unless the backend is a CPU one
/// (`CPU`, `BLAS`, `ZenDNN`); then, in llama-bench's order, each parameter that takes several
/// values in the run or differs from llama-bench's default (`n_cpu_moe` 0, `threads` = the
/// physical core count, also always shown for CPU backends, `cpu_mask` 0x0, `cpu_strict` 0,
/// `poll` 50, `n_batch` 2048, `n_ubatch` 512, `type_k`/`type_v` f16, `main_gpu` 0, `sm` layer,
/// `nkvo` 0, `fa` -1, `dev` auto, `ts` 0.00, `ot` none, `lm` auto, `lazy_mode` auto, `embd` 0,
/// `nopo` 0, `noh` 0, `rpk` 1, `fitt` 0, `fitc` 0); then `test` and `t/s`.
///
/// Build it before the run from the planned records (e.g. `Sweep::planned_records()`: only
/// their parameters matter), since the header is written before the first result. The
/// default value chooses the columns of a run with every parameter at its default on this
/// build's backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MdColumns {
    /// Chosen fields (llama-bench field names plus `model`, `size`, `params`, `backend`, `test`,
    /// `t/s`); empty = not chosen yet (the default columns).
    fields: Vec<&'static str>,
    /// Build commit and number of the planned records, for the table's footer.
    build: Option<(String, u64)>,
}

impl MdColumns {
    /// Chooses the columns for a run made of `records` (measured, or planned ones whose results
    /// are not known yet: only the parameters are read).
    pub fn from_records(records: &[BenchRecord]) -> Self {
        let backend = match records.first() {
            Some(r) => llama_bench_backend(&r.backends),
            None => llama_bench_backend(&crate::BuildInfo::current().backends_csv()),
        };
        let is_cpu = is_cpu_backend(&backend);
        let mut fields = vec!["model", "size", "params", "backend"];
        if !is_cpu {
            fields.push("n_gpu_layers");
        }
        for &(field, default) in MD_OPTIONAL {
            let values: BTreeSet<String> = records.iter().filter_map(|r| r.value_str(field)).collect();
            let default = match default {
                Some(d) => d.to_string(),
                None => crate::system::default_threads().to_string(),
            };
            let varies = values.len() > 1;
            let non_default = values.len() == 1 && values.iter().next() != Some(&default);
            let cpu_threads = field == "n_threads" && is_cpu;
            if varies || non_default || cpu_threads {
                fields.push(field);
            }
        }
        fields.push("test");
        fields.push("t/s");
        MdColumns { fields, build: records.first().map(|r| (r.build_commit.clone(), r.build_number)) }
    }

    /// The chosen fields, in table order: llama-bench field names, plus `model`, `size`,
    /// `params`, `backend`, `test` and `t/s`.
    pub fn fields(&self) -> Vec<&'static str> {
        if self.fields.is_empty() {
            MdColumns::from_records(&[]).fields
        } else {
            self.fields.clone()
        }
    }

    /// Build commit and number of the planned records, for the table's footer.
    pub(super) fn build(&self) -> Option<&(String, u64)> {
        self.build.as_ref()
    }

    /// The header name llama-bench shows for a field (`ngl`, `threads`, `fa`, ...).
    pub fn display_name(field: &str) -> &str {
        match field {
            "n_gpu_layers" => "ngl",
            "split_mode" => "sm",
            "n_threads" => "threads",
            "no_kv_offload" => "nkvo",
            "flash_attn" => "fa",
            "load_mode" => "lm",
            "embeddings" => "embd",
            "no_op_offload" => "nopo",
            "no_host" => "noh",
            "repack" => "rpk",
            "devices" => "dev",
            "tensor_split" => "ts",
            "tensor_buft_overrides" => "ot",
            "fit_target" => "fitt",
            "fit_min_ctx" => "fitc",
            f => f,
        }
    }
}

/// llama-bench's `backend` string from a record's `backends`: the non-CPU backends, comma
/// separated (`RPC` last), or `CPU` when there is none.
fn llama_bench_backend(backends: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    let mut rpc = false;
    for b in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        if b.starts_with("RPC") {
            rpc = true;
        } else if b != "CPU" {
            names.push(b);
        }
    }
    if rpc {
        names.push("RPC");
    }
    if names.is_empty() {
        "CPU".to_string()
    } else {
        names.join(",")
    }
}

fn is_cpu_backend(backend: &str) -> bool {
    ["CPU", "BLAS", "ZenDNN"].iter().any(|b| backend.contains(b))
}

/// llama-bench's column width: negative = left-aligned.
pub(super) fn md_width(field: &str) -> i32 {
    match field {
        "model" => -30,
        "t/s" => 20,
        "size" | "params" => 10,
        "n_gpu_layers" | "flash_attn" | "repack" => 3,
        "n_threads" | "n_batch" => 7,
        "n_ubatch" => 8,
        "type_k" | "type_v" | "split_mode" => 6,
        "load_mode" => 10,
        "devices" => -12,
        "test" => 15,
        "no_op_offload" | "no_host" => 4,
        _ => {
            let w = i32::try_from(field.len()).unwrap_or(i32::MAX).max(10);
            // The table's own columns (`backend`) are text too.
            if matches!(field_type(field), None | Some(FieldType::String)) {
                -w
            } else {
                w
            }
        }
    }
}

/// Pads like printf's `%*s` (negative width = left-aligned; widths count bytes, as printf does).
pub(super) fn pad(value: &str, width: i32) -> String {
    let w = width.unsigned_abs() as usize;
    if value.len() >= w {
        return value.to_string();
    }
    let fill = " ".repeat(w - value.len());
    if width < 0 {
        format!("{value}{fill}")
    } else {
        format!("{fill}{value}")
    }
}

/// Keeps a cell on its row: no line breaks, no bare `|`.
fn md_sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '|' => out.push_str("\\|"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn md_cell(r: &BenchRecord, field: &str) -> String {
    let value = match field {
        "model" => r.model_type.clone(),
        "size" => {
            let s = r.model_size as f64;
            if r.model_size < 1024 * 1024 * 1024 {
                format!("{:.2} MiB", s / 1024.0 / 1024.0)
            } else {
                format!("{:.2} GiB", s / 1024.0 / 1024.0 / 1024.0)
            }
        }
        "params" => {
            if r.model_n_params < 1_000_000_000 {
                format!("{:.2} M", r.model_n_params as f64 / 1e6)
            } else {
                format!("{:.2} B", r.model_n_params as f64 / 1e9)
            }
        }
        "backend" => llama_bench_backend(&r.backends),
        "test" => r.test_spec().name(),
        "t/s" => match r.status {
            Status::Ok => format!("{:.2} ± {:.2}", r.avg_ts, r.stddev_ts),
            s => format!("{}: {}", s.as_str(), r.error.as_deref().unwrap_or("unknown error")),
        },
        f => r.value_str(f).unwrap_or_else(|| unreachable_column(f)),
    };
    md_sanitize(&value)
}

/// md columns are llama-bench fields or the table's own (`model`, `size`, ...): a name that is
/// neither is a bug in this module, which `md_columns_are_known_fields` catches.
fn unreachable_column(name: &str) -> String {
    debug_assert!(false, "md column {name:?} is not a llama-bench field");
    String::new()
}

/// The header and alignment rows.
pub(super) fn header(columns: &[&'static str]) -> String {
    let mut head = String::from("|");
    let mut align = String::from("|");
    for f in columns {
        let w = md_width(f);
        head.push_str(&format!(" {} |", pad(MdColumns::display_name(f), w)));
        let dashes = "-".repeat(w.unsigned_abs() as usize - 1);
        align.push_str(&format!(" {dashes}{} |", if w > 0 { ":" } else { "-" }));
    }
    format!("{head}\n{align}\n")
}

/// One record's row.
pub(super) fn row(r: &BenchRecord, columns: &[&'static str]) -> String {
    let mut row = String::from("|");
    for f in columns {
        let cell = md_cell(r, f);
        let mut w = md_width(f);
        if *f == "t/s" {
            // llama-bench widens t/s by one byte for the two-byte "±": align on characters
            // here, which is the same for its rows and keeps failed rows aligned too.
            w += i32::try_from(cell.len() - cell.chars().count()).unwrap_or(0);
        }
        row.push_str(&format!(" {} |", pad(&cell, w)));
    }
    format!("{row}\n")
}

/// The footer line: `build: <commit> (<number>)`.
pub(super) fn footer(build: Option<&(String, u64)>) -> String {
    let (commit, number) = match build {
        Some(b) => b.clone(),
        None => {
            let b = crate::BuildInfo::current();
            (b.build_commit, b.build_number)
        }
    };
    format!("\nbuild: {commit} ({number})\n")
}
