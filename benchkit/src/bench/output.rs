//! Writers for llama-bench's output formats: md, csv, json, jsonl, sql — same fields, names,
//! order and layout, so llama.cpp's `scripts/compare-llama-bench.py` and existing dashboards read
//! benchkit's output unchanged. JSON/JSONL records also carry benchkit's own fields after
//! llama-bench's. Writers stream: each record is written (and flushed) as it is produced.

use super::record::{field_type, BenchRecord, FieldType, Status, LLAMA_BENCH_FIELDS};
use std::io::{self, Write};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OutputFormat {
    /// llama-bench's markdown table.
    Md,
    /// CSV with llama-bench's columns.
    Csv,
    /// A JSON array of records.
    Json,
    /// One JSON record per line.
    Jsonl,
    /// SQL for SQLite (`llama_bench` table).
    Sql,
}

impl OutputFormat {
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

    /// The format's name.
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

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputFormat::from_name(s).ok_or_else(|| format!("unknown output format {s:?}: md, csv, json, jsonl or sql"))
    }
}

/// Optional markdown columns in llama-bench's order, with its rule: a column is shown when the
/// parameter takes several values in the run or differs from llama-bench's default.
const MD_OPTIONAL: &[(&str, &str)] = &[
    ("n_cpu_moe", "0"),
    ("n_threads", ""),
    ("cpu_mask", "0x0"),
    ("cpu_strict", "0"),
    ("poll", "50"),
    ("n_batch", "2048"),
    ("n_ubatch", "512"),
    ("type_k", "f16"),
    ("type_v", "f16"),
    ("main_gpu", "0"),
    ("split_mode", "layer"),
    ("no_kv_offload", "0"),
    ("flash_attn", "-1"),
    ("devices", "auto"),
    ("tensor_split", "0.00"),
    ("tensor_buft_overrides", "none"),
    ("load_mode", "auto"),
    ("lazy_mode", "auto"),
    ("embeddings", "0"),
    ("no_op_offload", "0"),
    ("no_host", "0"),
    ("repack", "1"),
    ("fit_target", "0"),
    ("fit_min_ctx", "0"),
];

/// The markdown table's columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MdColumns {
    fields: Vec<&'static str>,
}

impl MdColumns {
    /// Chooses columns from the records of a run (they may be planned records whose results
    /// are not measured yet: only parameters matter).
    pub fn from_records(records: &[BenchRecord]) -> Self {
        let mut fields = vec!["model", "size", "params", "backend"];
        let backends = records.first().map(|r| r.backends.clone()).unwrap_or_else(|| "CPU".into());
        let is_cpu = ["CPU", "BLAS", "ZenDNN"].iter().any(|b| backends.contains(b));
        if !is_cpu {
            fields.push("n_gpu_layers");
        }
        for &(field, default) in MD_OPTIONAL {
            let mut values: Vec<String> = records.iter().map(|r| r.value_str(field)).collect();
            values.sort();
            values.dedup();
            let varies = values.len() > 1;
            let non_default = values.len() == 1 && !default.is_empty() && values[0] != default;
            let always = field == "n_threads" && is_cpu;
            let threads_non_default = field == "n_threads"
                && values.len() == 1
                && values[0] != crate::system::default_threads().to_string();
            if varies || non_default || always || threads_non_default {
                fields.push(field);
            }
        }
        fields.push("test");
        fields.push("t/s");
        MdColumns { fields }
    }

    /// Column field names.
    pub fn fields(&self) -> &[&'static str] {
        &self.fields
    }
}

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
            let w = field.len().max(10) as i32;
            if field_type(field) == FieldType::String {
                -w
            } else {
                w
            }
        }
    }
}

fn md_name(field: &str) -> &str {
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

/// Pads like printf's `%*s` (negative width = left-aligned), counting characters.
fn pad(value: &str, width: i32) -> String {
    let w = width.unsigned_abs() as usize;
    let n = value.chars().count();
    if n >= w {
        return value.to_string();
    }
    let fill = " ".repeat(w - n);
    if width < 0 {
        format!("{value}{fill}")
    } else {
        format!("{fill}{value}")
    }
}

fn md_cell(r: &BenchRecord, field: &str) -> String {
    match field {
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
        "backend" => r.backends.clone(),
        "test" => r.test.clone(),
        "t/s" => match r.status {
            Status::Ok => format!("{:.2} ± {:.2}", r.avg_ts, r.stddev_ts),
            _ => format!("failed: {}", r.error.as_deref().unwrap_or("")),
        },
        f => r.value_str(f),
    }
}

fn json_escape(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// llama-bench's fields, typed, then samples, then benchkit's fields, as `"key": value` pairs.
fn json_pairs(r: &BenchRecord) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(64);
    for &f in LLAMA_BENCH_FIELDS {
        let v = r.value_str(f);
        let v = match field_type(f) {
            FieldType::String => json_escape(&v),
            FieldType::Bool => (if v == "0" { "false" } else { "true" }).to_string(),
            _ => v,
        };
        out.push((f.to_string(), v));
    }
    let join = |v: Vec<String>| format!("[ {} ]", v.join(", "));
    out.push(("samples_ns".into(), join(r.samples_ns.iter().map(u64::to_string).collect())));
    out.push(("samples_ts".into(), join(r.samples_ts.iter().map(|x| format!("{x:.6}")).collect())));
    // benchkit's additions, serialized by serde (everything after llama-bench's fields).
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(r) {
        let skip: std::collections::HashSet<&str> =
            LLAMA_BENCH_FIELDS.iter().copied().chain(["samples_ns", "samples_ts"]).collect();
        for (k, v) in map {
            if !skip.contains(k.as_str()) {
                out.push((k, v.to_string()));
            }
        }
    }
    out
}

/// A streaming writer in one format.
pub struct Writer<W: Write> {
    out: W,
    format: OutputFormat,
    columns: MdColumns,
    first: bool,
    last_build: Option<(String, u64)>,
}

impl<W: Write> Writer<W> {
    /// A writer; `columns` matters for [`OutputFormat::Md`] only.
    pub fn new(out: W, format: OutputFormat, columns: MdColumns) -> Self {
        Writer { out, format, columns, first: true, last_build: None }
    }

    /// Writes the header (csv header line, json `[`, sql `CREATE TABLE`, md header rows).
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_header(&mut self) -> io::Result<()> {
        match self.format {
            OutputFormat::Csv => writeln!(self.out, "{}", LLAMA_BENCH_FIELDS.join(","))?,
            OutputFormat::Json => writeln!(self.out, "[")?,
            OutputFormat::Jsonl => {}
            OutputFormat::Sql => {
                writeln!(self.out, "CREATE TABLE IF NOT EXISTS llama_bench (")?;
                for (i, f) in LLAMA_BENCH_FIELDS.iter().enumerate() {
                    let ty = match field_type(f) {
                        FieldType::String => "TEXT",
                        FieldType::Bool | FieldType::Int => "INTEGER",
                        FieldType::Float => "REAL",
                    };
                    let comma = if i + 1 < LLAMA_BENCH_FIELDS.len() { "," } else { "" };
                    writeln!(self.out, "  {f} {ty}{comma}")?;
                }
                writeln!(self.out, ");\n")?;
            }
            OutputFormat::Md => {
                let mut head = String::from("|");
                let mut align = String::from("|");
                for f in self.columns.fields() {
                    let w = md_width(f);
                    head.push_str(&format!(" {} |", pad(md_name(f), w)));
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
    /// # Errors
    /// I/O errors.
    pub fn write_record(&mut self, r: &BenchRecord) -> io::Result<()> {
        self.last_build = Some((r.build_commit.clone(), r.build_number));
        match self.format {
            OutputFormat::Csv => {
                let vals: Vec<String> =
                    LLAMA_BENCH_FIELDS.iter().map(|f| format!("\"{}\"", r.value_str(f).replace('"', "\"\""))).collect();
                writeln!(self.out, "{}", vals.join(","))?;
            }
            OutputFormat::Json => {
                if !self.first {
                    writeln!(self.out, ",")?;
                }
                writeln!(self.out, "  {{")?;
                let pairs = json_pairs(r);
                for (i, (k, v)) in pairs.iter().enumerate() {
                    let comma = if i + 1 < pairs.len() { "," } else { "" };
                    writeln!(self.out, "    \"{k}\": {v}{comma}")?;
                }
                write!(self.out, "  }}")?;
            }
            OutputFormat::Jsonl => {
                let body: Vec<String> = json_pairs(r).into_iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                writeln!(self.out, "{{{}}}", body.join(", "))?;
            }
            OutputFormat::Sql => {
                let vals: Vec<String> =
                    LLAMA_BENCH_FIELDS.iter().map(|f| format!("'{}'", r.value_str(f).replace('\'', "''"))).collect();
                writeln!(self.out, "INSERT INTO llama_bench ({}) VALUES ({});", LLAMA_BENCH_FIELDS.join(", "), vals.join(", "))?;
            }
            OutputFormat::Md => {
                let mut row = String::from("|");
                for f in self.columns.fields() {
                    // Widths count characters: llama-bench widens t/s by one byte for the
                    // two-byte "±", which is the same visible width.
                    row.push_str(&format!(" {} |", pad(&md_cell(r, f), md_width(f))));
                }
                writeln!(self.out, "{row}")?;
            }
        }
        self.first = false;
        self.out.flush()
    }

    /// Writes the footer (json `]`, md build line).
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_footer(&mut self) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => writeln!(self.out, "\n]")?,
            OutputFormat::Md => {
                if let Some((commit, number)) = &self.last_build {
                    writeln!(self.out, "\nbuild: {commit} ({number})")?;
                }
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

/// All records in one format, as a string.
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
    use crate::bench::{Grid, RunSettings, Sweep};

    fn records() -> Vec<BenchRecord> {
        let backend = crate::Backend::init().unwrap();
        let grid = Grid { n_batch: vec![256, 512], n_prompt: vec![512], n_gen: vec![128], ..Grid::new("m \"q\".gguf") };
        let mut rs = Sweep::new(&backend, &grid, RunSettings::default()).unwrap().planned_records();
        for (i, r) in rs.iter_mut().enumerate() {
            r.model_type = "llama 1B Q4_0".into();
            r.model_size = 637_000_000;
            r.model_n_params = 1_100_048_384;
            r.samples_ns = vec![1_000_000_000, 1_100_000_000];
            r.samples_ts = vec![512.0, 465.454545];
            r.avg_ts = 488.727272 + i as f64;
            r.stddev_ts = 32.91;
            r.avg_ns = 1_050_000_000;
            r.cpu_info = "CPU with 'quote' and \"dq\"".into();
        }
        rs[3].status = Status::Failed;
        rs[3].error = Some("context too large".into());
        rs
    }

    #[test]
    fn csv_has_llama_bench_columns_quoted() {
        let out = to_string(&records(), OutputFormat::Csv);
        let mut lines = out.lines();
        assert_eq!(lines.next().unwrap(), LLAMA_BENCH_FIELDS.join(","));
        let row = lines.next().unwrap();
        assert!(row.starts_with("\"unknown\",\"0\",\"CPU with 'quote' and \"\"dq\"\"\""), "{row}");
        assert_eq!(out.lines().count(), 5);
    }

    #[test]
    fn json_is_valid_typed_and_ordered() {
        let out = to_string(&records(), OutputFormat::Json);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 4);
        assert_eq!(arr[0]["cpu_strict"], serde_json::Value::Bool(false));
        assert!(arr[0]["avg_ts"].is_f64());
        assert_eq!(arr[0]["n_batch"], 256);
        assert_eq!(arr[0]["samples_ns"].as_array().unwrap().len(), 2);
        assert_eq!(arr[3]["status"], "failed");
        assert_eq!(arr[3]["error"], "context too large");
        assert!(arr[0]["build"]["backends"].is_array());
        let first = out.find("\"build_commit\"").unwrap();
        let second = out.find("\"build_number\"").unwrap();
        let samples = out.find("\"samples_ns\"").unwrap();
        let status = out.find("\"status\"").unwrap();
        assert!(first < second && second < samples && samples < status);
        // jsonl: one object per line with the same keys
        let jl = to_string(&records(), OutputFormat::Jsonl);
        assert_eq!(jl.lines().count(), 4);
        for line in jl.lines() {
            let o: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(o.as_object().unwrap().len(), arr[0].as_object().unwrap().len());
        }
    }

    #[test]
    fn sql_loads_into_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let sql = dir.path().join("out.sql");
        std::fs::write(&sql, to_string(&records(), OutputFormat::Sql)).unwrap();
        let db = dir.path().join("bench.db");
        let out = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg(format!(".read {}", sql.display()))
            .output()
            .expect("sqlite3 CLI is required (apt-get install sqlite3)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let q = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg("SELECT count(*), max(n_batch), typeof(avg_ts), min(cpu_info) FROM llama_bench")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&q.stdout).trim(), "4|512|real|CPU with 'quote' and \"dq\"");
    }

    #[test]
    fn md_matches_llama_bench_layout() {
        let out = to_string(&records(), OutputFormat::Md);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "| model                          |       size |     params | backend    | threads | n_batch |            test |                  t/s |"
        );
        assert_eq!(
            lines[1],
            "| ------------------------------ | ---------: | ---------: | ---------- | ------: | ------: | --------------: | -------------------: |"
        );
        assert!(lines[2].contains("| 607.49 MiB |     1.10 B | CPU        |"), "{}", lines[2]);
        assert!(lines[2].contains("pp512 |"), "{}", lines[2]);
        assert!(lines[2].ends_with("488.73 ± 32.91 |"), "{}", lines[2]);
        assert!(lines[5].contains("failed: context too large"), "{}", lines[5]);
        assert!(out.trim_end().ends_with("build: unknown (0)"));
        // Without a varying n_batch the column disappears.
        let mut one = records();
        one.truncate(2);
        for r in &mut one {
            r.n_batch = 2048;
        }
        assert!(!to_string(&one, OutputFormat::Md).lines().next().unwrap().contains("n_batch"));
    }

    #[test]
    fn writes_stream_record_by_record() {
        let rs = records();
        let mut w = Writer::new(Vec::new(), OutputFormat::Json, MdColumns::from_records(&rs));
        w.write_header().unwrap();
        w.write_record(&rs[0]).unwrap();
        w.write_record(&rs[1]).unwrap();
        let partial = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(partial.matches("\"test_time\"").count(), 2);
        assert!("md,csv,json,jsonl,sql".split(',').all(|f| f.parse::<OutputFormat>().is_ok()));
        assert!("xml".parse::<OutputFormat>().is_err());
    }
}
