//! Writers for llama-bench's output formats: md, csv, json, jsonl and sql.
//!
//! Each format keeps llama-bench's field names, order and layout, so llama.cpp's
//! `scripts/compare-llama-bench.py` and existing dashboards read benchkit's output unchanged.
//! csv and sql carry llama-bench's columns only; json and jsonl records add benchkit's own
//! fields after llama-bench's (after `samples_ns` and `samples_ts`), which llama-bench's readers
//! ignore.
//!
//! A [`Writer`] streams: it writes the header once, each record as soon as it is produced
//! (flushed), and the footer at the end, so an interrupted sweep keeps every finished record.
//!
//! ```
//! use benchkit::bench::output::{MdColumns, OutputFormat, Writer};
//! let mut w = Writer::new(Vec::new(), OutputFormat::Csv, MdColumns::default());
//! w.write_header()?;
//! // for record in sweep { w.write_record(&record)?; }
//! w.write_footer()?;
//! assert!(String::from_utf8(w.into_inner()).unwrap().starts_with("build_commit,build_number,"));
//! # Ok::<(), std::io::Error>(())
//! ```

use super::record::{field_type, BenchRecord, FieldType, Status, LLAMA_BENCH_FIELDS};
use std::collections::BTreeSet;
use std::io::{self, Write};

/// An output format (llama-bench's `-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OutputFormat {
    /// llama-bench's markdown table (its default).
    Md,
    /// CSV with llama-bench's columns.
    Csv,
    /// A JSON array of records.
    Json,
    /// One JSON record per line.
    Jsonl,
    /// SQL for SQLite: `CREATE TABLE IF NOT EXISTS llama_bench` and one `INSERT` per record.
    Sql,
}

impl OutputFormat {
    /// Every format, in llama-bench's help order.
    pub const ALL: [OutputFormat; 5] =
        [OutputFormat::Csv, OutputFormat::Json, OutputFormat::Jsonl, OutputFormat::Md, OutputFormat::Sql];

    /// Parses `md`, `csv`, `json`, `jsonl` or `sql`.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "md" => OutputFormat::Md,
            "csv" => OutputFormat::Csv,
            "json" => OutputFormat::Json,
            "jsonl" => OutputFormat::Jsonl,
            "sql" => OutputFormat::Sql,
            _ => return None,
        })
    }

    /// The format's name, as llama-bench's `-o` takes it.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Md => "md",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Sql => "sql",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown columns
// ---------------------------------------------------------------------------------------------

/// llama-bench's optional markdown columns, in its order, each with llama-bench's default value
/// as its text formats write it (`None`: the default is machine-dependent, see `n_threads`).
/// A column is shown when the parameter takes several values in the run or its one value
/// differs from the default. `n_gpu_layers` is not here: llama-bench shows it for every
/// non-CPU backend, whatever its values.
const MD_OPTIONAL: &[(&str, Option<&str>)] = &[
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
            let values: BTreeSet<String> = records.iter().map(|r| r.value_str(field)).collect();
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
fn md_width(field: &str) -> i32 {
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
            if field_type(field) == FieldType::String {
                -w
            } else {
                w
            }
        }
    }
}

/// Pads like printf's `%*s` (negative width = left-aligned; widths count bytes, as printf does).
fn pad(value: &str, width: i32) -> String {
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

/// llama-bench's test name: `pp512`, `tg128`, `pp512+tg128`, with ` @ d512` at depth.
fn test_name(r: &BenchRecord) -> String {
    let base = if r.n_prompt > 0 && r.n_gen == 0 {
        format!("pp{}", r.n_prompt)
    } else if r.n_gen > 0 && r.n_prompt == 0 {
        format!("tg{}", r.n_gen)
    } else {
        format!("pp{}+tg{}", r.n_prompt, r.n_gen)
    };
    if r.n_depth > 0 {
        format!("{base} @ d{}", r.n_depth)
    } else {
        base
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

fn md_cell(r: &BenchRecord, field: &str) -> String {
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
        "test" => test_name(r),
        "t/s" => match r.status {
            Status::Ok => format!("{:.2} ± {:.2}", r.avg_ts, r.stddev_ts),
            s => format!("{}: {}", s.as_str(), r.error.as_deref().unwrap_or("unknown error")),
        },
        f => r.value_str(f),
    };
    md_sanitize(&value)
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// A llama-bench field's text value; a failed record's timings are written as zero.
fn field_value(r: &BenchRecord, field: &str) -> String {
    if !r.status.is_ok() {
        match field {
            "avg_ns" | "stddev_ns" => return "0".to_string(),
            "avg_ts" | "stddev_ts" => return format!("{:.6}", 0.0),
            _ => {}
        }
    }
    r.value_str(field)
}

/// llama-bench's JSON string escaping (`"`, `\`, and control characters as `\u00XX`); other
/// characters pass through as UTF-8.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A llama-bench field as a JSON value, typed as llama-bench types it.
fn json_field(r: &BenchRecord, field: &str) -> String {
    let v = field_value(r, field);
    match field_type(field) {
        FieldType::String => json_string(&v),
        FieldType::Bool => (if v == "0" { "false" } else { "true" }).to_string(),
        // JSON has no inf/nan: write null rather than an unparsable file.
        FieldType::Float => match v.parse::<f64>() {
            Ok(x) if x.is_finite() => v,
            _ => "null".to_string(),
        },
        FieldType::Int => {
            if v.parse::<i128>().is_ok() {
                v
            } else {
                json_string(&v)
            }
        }
    }
}

/// C++ `ostream << double` (printf `%g`, 6 significant digits), which llama-bench uses for
/// `samples_ts`; `null` for non-finite values, which JSON cannot hold.
fn fmt_g6(x: f64) -> String {
    fn strip(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    if !x.is_finite() {
        return "null".to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // The exponent after rounding to 6 significant digits decides the style, as in %g.
    let e = format!("{x:.5e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let prec = usize::try_from(5 - exp).unwrap_or(0);
        strip(&format!("{x:.prec$}")).to_string()
    } else {
        format!("{}e{}{:02}", strip(mantissa), if exp < 0 { '-' } else { '+' }, exp.unsigned_abs())
    }
}

fn json_or_null<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

/// Keys benchkit adds after llama-bench's, in order.
const BENCHKIT_FIELDS: &[&str] = &[
    "status",
    "error",
    "test",
    "repetitions",
    "warmup",
    "prio",
    "n_ctx",
    "seed",
    "model_file_bytes",
    "model_arch",
    "provenance",
];

fn benchkit_field(r: &BenchRecord, field: &str) -> String {
    match field {
        "status" => json_or_null(&r.status),
        "error" => json_or_null(&r.error),
        "test" => json_or_null(&r.test),
        "repetitions" => r.repetitions.to_string(),
        "warmup" => r.warmup.to_string(),
        "prio" => r.prio.to_string(),
        "n_ctx" => r.n_ctx.to_string(),
        "seed" => r.seed.to_string(),
        "model_file_bytes" => r.model_file_bytes.to_string(),
        "model_arch" => json_or_null(&r.model_arch),
        "provenance" => json_or_null(&r.provenance),
        _ => "null".to_string(),
    }
}

/// `[ a, b ]` as llama-bench joins arrays.
fn json_array(items: Vec<String>) -> String {
    format!("[ {} ]", items.join(", "))
}

fn samples_ns(r: &BenchRecord) -> String {
    json_array(r.samples_ns.iter().map(u64::to_string).collect())
}

fn samples_ts(r: &BenchRecord) -> String {
    json_array(r.samples_ts.iter().map(|&x| fmt_g6(x)).collect())
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// Streaming writer in one format: the header once, each record as it is produced (flushed),
/// the footer at the end, so an interrupted sweep keeps every finished record (for json, the
/// file lacks only the closing bracket).
pub struct Writer<W: Write> {
    out: W,
    format: OutputFormat,
    columns: Vec<&'static str>,
    /// No json record written yet (no separating comma needed).
    first: bool,
    /// Build commit and number for md's footer.
    build: Option<(String, u64)>,
}

impl<W: Write> Writer<W> {
    /// A writer of `format` to `out`. `md_columns` matters for [`OutputFormat::Md`] only: the
    /// columns to show, chosen from the run's parameters as llama-bench chooses them (pass
    /// `MdColumns::from_records(&records)`, with planned records when writing as results come).
    pub fn new(out: W, format: OutputFormat, md_columns: MdColumns) -> Self {
        let columns = if format == OutputFormat::Md { md_columns.fields() } else { Vec::new() };
        Writer { out, format, columns, first: true, build: md_columns.build }
    }

    /// The format written.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Writes the header: the csv header line, json's `[`, sql's `CREATE TABLE`, md's header and
    /// alignment rows (nothing for jsonl).
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    pub fn write_header(&mut self) -> io::Result<()> {
        match self.format {
            OutputFormat::Csv => writeln!(self.out, "{}", LLAMA_BENCH_FIELDS.join(","))?,
            OutputFormat::Json => writeln!(self.out, "[")?,
            OutputFormat::Jsonl => {}
            OutputFormat::Sql => {
                let mut s = String::from("CREATE TABLE IF NOT EXISTS llama_bench (\n");
                for (i, f) in LLAMA_BENCH_FIELDS.iter().enumerate() {
                    let ty = match field_type(f) {
                        FieldType::String => "TEXT",
                        FieldType::Bool | FieldType::Int => "INTEGER",
                        FieldType::Float => "REAL",
                    };
                    let comma = if i + 1 < LLAMA_BENCH_FIELDS.len() { "," } else { "" };
                    s.push_str(&format!("  {f} {ty}{comma}\n"));
                }
                s.push_str(");\n\n");
                self.out.write_all(s.as_bytes())?;
            }
            OutputFormat::Md => {
                let mut head = String::from("|");
                let mut align = String::from("|");
                for f in &self.columns {
                    let w = md_width(f);
                    head.push_str(&format!(" {} |", pad(MdColumns::display_name(f), w)));
                    let dashes = "-".repeat(w.unsigned_abs() as usize - 1);
                    align.push_str(&format!(" {dashes}{} |", if w > 0 { ":" } else { "-" }));
                }
                writeln!(self.out, "{head}\n{align}")?;
            }
        }
        self.out.flush()
    }

    /// Writes one record and flushes.
    ///
    /// A failed record (status `failed`) appears in json, jsonl (with `status` and `error`) and md
    /// (`failed: <error>` in the t/s column). csv and sql are the formats scripts average over
    /// (`compare-llama-bench.py`, dashboards) and llama-bench never writes a failed test, so
    /// there a failed record writes no row: nothing in csv, an SQL comment naming the test and
    /// its error in sql.
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    pub fn write_record(&mut self, r: &BenchRecord) -> io::Result<()> {
        if self.build.is_none() {
            self.build = Some((r.build_commit.clone(), r.build_number));
        }
        let failed = !r.status.is_ok();
        let text = match self.format {
            OutputFormat::Csv if failed => String::new(),
            OutputFormat::Sql if failed => {
                let error = r.error.as_deref().unwrap_or("unknown error").replace(['\n', '\r'], " ");
                format!("-- benchkit: {} ({}) failed: {error}\n", r.test, r.model_filename.replace(['\n', '\r'], " "))
            }
            OutputFormat::Csv => {
                let vals: Vec<String> = LLAMA_BENCH_FIELDS
                    .iter()
                    .map(|f| format!("\"{}\"", field_value(r, f).replace('"', "\"\"")))
                    .collect();
                format!("{}\n", vals.join(","))
            }
            OutputFormat::Json => {
                let mut s = String::new();
                if !self.first {
                    s.push_str(",\n");
                }
                s.push_str("  {\n");
                for f in LLAMA_BENCH_FIELDS {
                    s.push_str(&format!("    \"{f}\": {},\n", json_field(r, f)));
                }
                s.push_str(&format!("    \"samples_ns\": {},\n", samples_ns(r)));
                s.push_str(&format!("    \"samples_ts\": {}", samples_ts(r)));
                for f in BENCHKIT_FIELDS {
                    s.push_str(&format!(",\n    \"{f}\": {}", benchkit_field(r, f)));
                }
                s.push_str("\n  }");
                s
            }
            OutputFormat::Jsonl => {
                let mut s = String::from("{");
                for f in LLAMA_BENCH_FIELDS {
                    s.push_str(&format!("\"{f}\": {}, ", json_field(r, f)));
                }
                // llama-bench writes no space after this comma.
                s.push_str(&format!("\"samples_ns\": {},", samples_ns(r)));
                s.push_str(&format!("\"samples_ts\": {}", samples_ts(r)));
                for f in BENCHKIT_FIELDS {
                    s.push_str(&format!(", \"{f}\": {}", benchkit_field(r, f)));
                }
                s.push_str("}\n");
                s
            }
            OutputFormat::Sql => {
                let vals: Vec<String> =
                    LLAMA_BENCH_FIELDS.iter().map(|f| format!("'{}'", field_value(r, f).replace('\'', "''"))).collect();
                format!("INSERT INTO llama_bench ({}) VALUES ({});\n", LLAMA_BENCH_FIELDS.join(", "), vals.join(", "))
            }
            OutputFormat::Md => {
                let mut row = String::from("|");
                for f in &self.columns {
                    let cell = md_cell(r, f);
                    let mut w = md_width(f);
                    if *f == "t/s" {
                        // llama-bench widens t/s by one byte for the two-byte "±": align on
                        // characters here, which is the same for its rows and keeps failed
                        // rows aligned too.
                        w += i32::try_from(cell.len() - cell.chars().count()).unwrap_or(0);
                    }
                    row.push_str(&format!(" {} |", pad(&cell, w)));
                }
                format!("{row}\n")
            }
        };
        self.out.write_all(text.as_bytes())?;
        self.first = false;
        self.out.flush()
    }

    /// Writes the footer: json's `]`, md's `build: <commit> (<number>)` line (nothing for the
    /// other formats), and flushes.
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    pub fn write_footer(&mut self) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => self.out.write_all(b"\n]\n")?,
            OutputFormat::Md => {
                let (commit, number) = match &self.build {
                    Some(b) => b.clone(),
                    None => {
                        let b = crate::BuildInfo::current();
                        (b.build_commit, b.build_number)
                    }
                };
                writeln!(self.out, "\nbuild: {commit} ({number})")?;
            }
            _ => {}
        }
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// All `records` in `format` (header, records, footer), as a string; md columns are chosen
/// from the records.
pub fn to_string(records: &[BenchRecord], format: OutputFormat) -> String {
    let mut w = Writer::new(Vec::new(), format, MdColumns::from_records(records));
    // Writing to a Vec cannot fail.
    let _ = w.write_header();
    for r in records {
        let _ = w.write_record(r);
    }
    let _ = w.write_footer();
    String::from_utf8_lossy(&w.into_inner()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llama-bench's `test::get_fields()`, as its csv header writes it.
    const LLAMA_BENCH_CSV_HEADER: &str = "build_commit,build_number,cpu_info,gpu_info,backends,model_filename,\
model_type,model_size,model_n_params,n_batch,n_ubatch,n_threads,cpu_mask,cpu_strict,poll,type_k,type_v,\
n_gpu_layers,n_cpu_moe,split_mode,main_gpu,no_kv_offload,flash_attn,devices,tensor_split,tensor_buft_overrides,\
load_mode,lazy_mode,embeddings,no_op_offload,no_host,repack,fit_target,fit_min_ctx,n_prompt,n_gen,n_depth,\
test_time,avg_ns,stddev_ns,avg_ts,stddev_ts";

    /// Build and system info, collected once: `SystemInfo::collect()` calls llama.cpp's
    /// `llama_print_system_info()`, which fills a function-static string and so must not run
    /// on several test threads at once.
    fn build_and_system() -> (crate::BuildInfo, crate::SystemInfo) {
        static INFO: std::sync::OnceLock<(crate::BuildInfo, crate::SystemInfo)> = std::sync::OnceLock::new();
        INFO.get_or_init(|| {
            crate::Backend::init().unwrap();
            (crate::BuildInfo::current(), crate::SystemInfo::collect())
        })
        .clone()
    }

    /// A record of a default llama-bench CPU run, every field filled.
    fn record(n_prompt: u32, n_gen: u32) -> BenchRecord {
        let (build, system) = build_and_system();
        let n_tokens = f64::from(n_prompt + n_gen);
        let samples_ns = vec![1_000_000_000, 1_100_000_000, 1_050_000_000];
        let samples_ts: Vec<f64> = samples_ns.iter().map(|&ns| 1e9 * n_tokens / ns as f64).collect();
        let avg_ts = samples_ts.iter().sum::<f64>() / 3.0;
        let var = samples_ts.iter().map(|x| (x - avg_ts).powi(2)).sum::<f64>() / 2.0;
        BenchRecord {
            build_commit: "abc1234".into(),
            build_number: 6543,
            cpu_info: "AMD EPYC \"Genoa\" 9654 'x'".into(),
            gpu_info: String::new(),
            backends: "CPU".into(),
            model_filename: "models/llama 1b.gguf".into(),
            model_type: "llama 1B Q4_0".into(),
            model_size: 637_000_000,
            model_n_params: 1_100_048_384,
            n_batch: 2048,
            n_ubatch: 512,
            n_threads: crate::system::default_threads() as u32,
            cpu_mask: "0x0".into(),
            cpu_strict: false,
            poll: 50,
            type_k: "f16".into(),
            type_v: "f16".into(),
            n_gpu_layers: 99,
            n_cpu_moe: 0,
            split_mode: "layer".into(),
            main_gpu: 0,
            no_kv_offload: false,
            flash_attn: -1,
            devices: "auto".into(),
            tensor_split: "0.00".into(),
            tensor_buft_overrides: "none".into(),
            load_mode: "auto".into(),
            lazy_mode: "auto".into(),
            embeddings: false,
            no_op_offload: 0,
            no_host: false,
            repack: true,
            fit_target: 0,
            fit_min_ctx: 0,
            n_prompt,
            n_gen,
            n_depth: 0,
            test_time: "2025-01-01T00:00:00Z".into(),
            avg_ns: 1_050_000_000,
            stddev_ns: 50_000_000,
            avg_ts,
            stddev_ts: var.sqrt(),
            samples_ns,
            samples_ts,
            status: Status::Ok,
            error: None,
            crash: None,
            test: crate::bench::Test { n_prompt, n_gen, n_depth: 0 }.name(),
            repetitions: 3,
            warmup: true,
            prio: 0,
            n_ctx: n_prompt + n_gen,
            seed: 42,
            model_file_bytes: 637_500_000,
            model_arch: "llama".into(),
            provenance: crate::Provenance::with(build, system).seed("prompt_tokens", 42),
        }
    }

    /// pp512, tg128, pp512+tg128 @ d512, and a failed tg128.
    fn records() -> Vec<BenchRecord> {
        let mut depth = record(512, 128);
        depth.n_depth = 512;
        depth.test = "pp512+tg128 @ d512".into();
        let mut failed = record(0, 128);
        failed.status = Status::Failed;
        failed.error = Some("context | too \"large\"\nfor this".into());
        failed.avg_ts = 12.5;
        vec![record(512, 0), record(0, 128), depth, failed]
    }

    /// Splits one csv line written with every value quoted.
    fn csv_split(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            assert_eq!(c, '"', "unquoted csv value in {line}");
            let mut v = String::new();
            loop {
                match chars.next().expect("unterminated csv value") {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        v.push('"');
                    }
                    '"' => break,
                    c => v.push(c),
                }
            }
            out.push(v);
            match chars.next() {
                Some(',') | None => {}
                Some(c) => panic!("unexpected {c:?} after a csv value"),
            }
        }
        out
    }

    #[test]
    fn csv_has_llama_bench_columns_quoted() {
        let out = to_string(&records(), OutputFormat::Csv);
        let lines: Vec<&str> = out.lines().collect();
        // The failed record writes no row.
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], LLAMA_BENCH_CSV_HEADER);
        assert_eq!(lines[0], LLAMA_BENCH_FIELDS.join(","));
        assert!(
            lines[1].starts_with("\"abc1234\",\"6543\",\"AMD EPYC \"\"Genoa\"\" 9654 'x'\",\"\",\"CPU\","),
            "{}",
            lines[1]
        );
        for line in &lines[1..] {
            let vals = csv_split(line);
            assert_eq!(vals.len(), LLAMA_BENCH_FIELDS.len(), "{line}");
            assert_eq!(vals[2], "AMD EPYC \"Genoa\" 9654 'x'");
            assert_eq!(vals[13], "0", "cpu_strict as 0/1");
        }
        let pp = csv_split(lines[1]);
        assert_eq!(pp[40], format!("{:.6}", records()[0].avg_ts));
        assert!(pp[40].split_once('.').unwrap().1.len() == 6);
        assert!(lines.iter().all(|l| !l.contains("0.000000\",\"0.000000")), "no zero-timing rows");
    }

    #[test]
    fn json_is_valid_typed_and_ordered() {
        let rs = records();
        let out = to_string(&rs, OutputFormat::Json);
        assert!(out.starts_with("[\n  {\n    \"build_commit\": \"abc1234\",\n    \"build_number\": 6543,\n"), "{out}");
        assert!(out.ends_with("\n  }\n]\n"));
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 4);
        // Key order, from the raw text of the first object.
        let first = &out[..out.find("\n  }").unwrap()];
        let keys: Vec<&str> = first
            .lines()
            .filter_map(|l| l.strip_prefix("    \"").and_then(|l| l.split_once('"')).map(|(k, _)| k))
            .collect();
        let expected: Vec<&str> = LLAMA_BENCH_FIELDS
            .iter()
            .copied()
            .chain(["samples_ns", "samples_ts"])
            .chain(BENCHKIT_FIELDS.iter().copied())
            .collect();
        assert_eq!(keys, expected);
        // Every field of the record is there (fails when BenchRecord gains a field not written).
        let serde_keys: BTreeSet<String> =
            serde_json::to_value(&rs[0]).unwrap().as_object().unwrap().keys().cloned().collect();
        let our_keys: BTreeSet<String> = arr[0].as_object().unwrap().keys().cloned().collect();
        assert_eq!(our_keys, serde_keys);
        // Types.
        let o = &arr[0];
        assert_eq!(o["cpu_strict"], serde_json::Value::Bool(false));
        assert_eq!(o["repack"], serde_json::Value::Bool(true));
        assert!(o["avg_ts"].is_f64());
        assert!(o["build_number"].is_u64());
        assert_eq!(o["n_gpu_layers"], 99);
        assert_eq!(o["flash_attn"], -1);
        assert_eq!(o["cpu_info"], "AMD EPYC \"Genoa\" 9654 'x'");
        assert_eq!(o["samples_ns"].as_array().unwrap().len(), 3);
        assert_eq!(o["samples_ts"].as_array().unwrap().len(), 3);
        assert!((o["samples_ts"][0].as_f64().unwrap() - 512.0).abs() < 1e-9);
        assert!(o["provenance"]["build"]["backends"].is_array());
        assert!(o["provenance"]["system"]["cpu_info"].is_string());
        assert_eq!(o["provenance"]["seeds"]["prompt_tokens"], 42);
        assert_eq!(o["status"], "ok");
        assert!(o["error"].is_null());
        assert_eq!(arr[2]["n_depth"], 512);
        assert_eq!(arr[3]["status"], "failed");
        assert_eq!(arr[3]["error"], "context | too \"large\"\nfor this");
        assert_eq!(arr[3]["avg_ts"].as_f64(), Some(0.0));
        // The record round-trips through serde for benchkit's own fields.
        assert_eq!(serde_json::from_value::<crate::Provenance>(o["provenance"].clone()).unwrap(), rs[0].provenance);
    }

    #[test]
    fn jsonl_one_parsable_object_per_line() {
        let rs = records();
        let out = to_string(&rs, OutputFormat::Jsonl);
        let json: serde_json::Value = serde_json::from_str(&to_string(&rs, OutputFormat::Json)).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        for (i, line) in lines.iter().enumerate() {
            assert!(line.starts_with("{\"build_commit\": \"abc1234\", \"build_number\": 6543, "), "{line}");
            assert!(line.contains(" ],\"samples_ts\": [ "), "{line}");
            let o: serde_json::Value = serde_json::from_str(line).expect("valid JSON line");
            assert_eq!(o, json[i], "jsonl and json carry the same record");
        }
    }

    #[test]
    fn samples_ts_formatted_like_cpp_ostream() {
        for (x, s) in [
            (465.454545, "465.455"),
            (512.0, "512"),
            (0.5, "0.5"),
            (1e6, "1e+06"),
            (1_234_567.0, "1.23457e+06"),
            (123_456.7, "123457"),
            (999_999.7, "1e+06"),
            (0.000_123_456_7, "0.000123457"),
            (1.234e-5, "1.234e-05"),
            (0.0, "0"),
            (f64::INFINITY, "null"),
        ] {
            assert_eq!(fmt_g6(x), s, "{x}");
        }
    }

    #[test]
    fn sql_loads_into_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let sql = dir.path().join("bench.sql");
        std::fs::write(&sql, to_string(&records(), OutputFormat::Sql)).unwrap();
        let text = std::fs::read_to_string(&sql).unwrap();
        assert!(text
            .starts_with("CREATE TABLE IF NOT EXISTS llama_bench (\n  build_commit TEXT,\n  build_number INTEGER,\n"));
        assert!(text.contains(
            "\n  avg_ts REAL,\n  stddev_ts REAL\n);\n\nINSERT INTO llama_bench (build_commit, build_number, "
        ));
        let db = dir.path().join("bench.db");
        let sqlite = |args: &[&str]| {
            let out =
                std::process::Command::new("sqlite3").arg(&db).args(args).output().unwrap_or_else(|e| {
                    panic!("the sqlite3 CLI is needed for this test (apt-get install sqlite3): {e}")
                });
            assert!(out.status.success(), "sqlite3 failed: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        sqlite(&[&format!(".read {}", sql.display())]);
        // Loading twice adds rows to the existing table, as with llama-bench.
        sqlite(&[&format!(".read {}", sql.display())]);
        assert_eq!(sqlite(&["SELECT count(*) FROM llama_bench"]), "6");
        assert!(
            text.contains("\n-- benchkit: tg128 (") && text.contains(") failed: context | too \"large\" for this\n"),
            "{text}"
        );
        assert_eq!(
            sqlite(&[
                "SELECT cpu_info, n_prompt, typeof(avg_ts), typeof(n_batch) FROM llama_bench WHERE n_gen = 0 LIMIT 1"
            ]),
            "AMD EPYC \"Genoa\" 9654 'x'|512|real|integer"
        );
        assert_eq!(sqlite(&["SELECT count(*) FROM llama_bench WHERE avg_ts = 0"]), "0");
        assert_eq!(sqlite(&["SELECT type FROM pragma_table_info('llama_bench') WHERE name = 'cpu_strict'"]), "INTEGER");
    }

    #[test]
    fn md_matches_llama_bench_layout() {
        let out = to_string(&records(), OutputFormat::Md);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "| model                          |       size |     params | backend    | threads |            test |                  t/s |"
        );
        assert_eq!(
            lines[1],
            "| ------------------------------ | ---------: | ---------: | ---------- | ------: | --------------: | -------------------: |"
        );
        let t = crate::system::default_threads();
        let pp = &records()[0];
        let ts = format!("{:.2} ± {:.2}", pp.avg_ts, pp.stddev_ts);
        assert_eq!(
            lines[2],
            format!("| llama 1B Q4_0                  | 607.49 MiB |     1.10 B | CPU        | {t:>7} |           pp512 | {ts:>20} |")
        );
        assert!(lines[3].contains("|           tg128 |"), "{}", lines[3]);
        assert!(lines[4].contains("| pp512+tg128 @ d512 |"), "{}", lines[4]);
        assert!(lines[2].contains(" ± "));
        // Every ok row is as wide (in characters) as the header.
        for l in &lines[2..4] {
            assert_eq!(l.chars().count(), lines[0].chars().count(), "{l}");
        }
        assert!(lines[5].contains("| failed: context \\| too \"large\" for this |"), "{}", lines[5]);
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[6], "");
        assert_eq!(lines[7], "build: abc1234 (6543)");
    }

    #[test]
    fn md_columns_follow_llama_bench_rules() {
        let header = |rs: &[BenchRecord]| to_string(rs, OutputFormat::Md).lines().next().unwrap().to_string();
        // n_batch varies: its column appears after threads.
        let mut rs = vec![record(512, 0), record(512, 0)];
        rs[1].n_batch = 512;
        let h = header(&rs);
        assert!(h.contains("| threads | n_batch |            test |"), "{h}");
        let out = to_string(&rs, OutputFormat::Md);
        assert!(out.lines().nth(1).unwrap().contains("| ------: | ------: |"));
        assert!(out.lines().nth(3).unwrap().contains(" |     512 |"), "{out}");
        // One non-default value also shows the column; defaults do not.
        let mut one = record(512, 0);
        one.n_ubatch = 256;
        one.type_k = "q8_0".into();
        one.flash_attn = 1;
        assert!(header(&[one]).contains("| threads | n_ubatch | type_k |  fa |            test |"));
        // A GPU backend shows ngl, and threads only when not default.
        let mut gpu = record(512, 0);
        gpu.backends = "CPU,CUDA".into();
        assert_eq!(
            header(&[gpu.clone()]),
            "| model                          |       size |     params | backend    | ngl |            test |                  t/s |"
        );
        assert!(to_string(&[gpu.clone()], OutputFormat::Md).lines().nth(2).unwrap().contains("| CUDA       |  99 |"));
        gpu.n_threads += 1;
        assert!(header(&[gpu]).contains("| ngl | threads |"));
        // Size in GiB and params in M as llama-bench prints them.
        let mut big = record(512, 0);
        big.model_size = 4_000_000_000;
        big.model_n_params = 270_000_000;
        let row = to_string(&[big], OutputFormat::Md);
        assert!(row.contains("|   3.73 GiB |   270.00 M |"), "{row}");
        // Default columns without records: the plain CPU table.
        assert_eq!(MdColumns::default().fields(), ["model", "size", "params", "backend", "n_threads", "test", "t/s"]);
    }

    #[test]
    fn writes_stream_record_by_record() {
        let rs = records();
        for format in OutputFormat::ALL {
            let mut w = Writer::new(Vec::new(), format, MdColumns::from_records(&rs));
            w.write_header().unwrap();
            w.write_record(&rs[0]).unwrap();
            w.write_record(&rs[1]).unwrap();
            // No footer: an interrupted sweep.
            let partial = String::from_utf8(w.into_inner()).unwrap();
            let (pp, tg) = match format {
                OutputFormat::Md => ("pp512 |", "tg128 |"),
                OutputFormat::Sql => ("'512', '0', '0', ", "'0', '128', '0', "),
                OutputFormat::Csv => ("\"512\",\"0\",\"0\",", "\"0\",\"128\",\"0\","),
                _ => ("\"test\": \"pp512\"", "\"test\": \"tg128\""),
            };
            assert!(partial.contains(pp) && partial.contains(tg), "{format}: {partial}");
            if format == OutputFormat::Json {
                // Only the closing bracket is missing.
                let v: serde_json::Value = serde_json::from_str(&format!("{partial}\n]\n")).unwrap();
                assert_eq!(v.as_array().unwrap().len(), 2);
            }
        }
    }

    #[test]
    fn format_names() {
        for f in OutputFormat::ALL {
            assert_eq!(f.name().parse::<OutputFormat>(), Ok(f));
            assert_eq!(OutputFormat::from_name(&f.to_string()), Some(f));
        }
        assert!("xml".parse::<OutputFormat>().is_err());
        assert_eq!(serde_json::to_string(&OutputFormat::Jsonl).unwrap(), "\"jsonl\"");
        // Empty runs still give valid documents.
        assert!(serde_json::from_str::<serde_json::Value>(&to_string(&[], OutputFormat::Json)).is_ok());
        assert_eq!(to_string(&[], OutputFormat::Csv).trim_end(), LLAMA_BENCH_CSV_HEADER);
    }
}
