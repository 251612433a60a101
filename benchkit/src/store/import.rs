//! History in and out: llama-bench's json, jsonl, csv and sql outputs and vLLM's benchmark
//! JSON (benchkit's own bench and replay outputs too) into the store; the store's records out as
//! jsonl or csv.
//!
//! llama-bench rows become one run per build and machine (`source = llama-bench`), with the
//! same parameter names and spellings as benchkit's own rows, so the two compare. Its json and
//! jsonl carry each repetition's t/s (`samples_ts`); its csv and sql only the mean and stddev,
//! so comparisons of those rows have a ratio but no CI or p-value.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use super::record::{bench_test_name, machine_name, replay_metrics, replay_params};
use super::{Entry, Metric, RunId, RunMeta, Store, StoreError, StoredRecord};

/// What can go wrong importing or exporting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not in the format it was read as.
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Nothing in the file says what it is.
    #[error("{}: cannot tell its format; give --format llama-bench-json|llama-bench-jsonl|llama-bench-csv|llama-bench-sql|vllm", .0.display())]
    UnknownFormat(PathBuf),
    /// The store refused it; nothing of the failing record was written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The formats import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportFormat {
    /// From the file's extension and contents.
    Auto,
    /// llama-bench `-o json` (an array of records).
    LlamaBenchJson,
    /// llama-bench `-o jsonl`.
    LlamaBenchJsonl,
    /// llama-bench `-o csv`.
    LlamaBenchCsv,
    /// llama-bench `-o sql`.
    LlamaBenchSql,
    /// vLLM's `benchmark_serving.py --save-result` JSON (and benchkit's replay result).
    Vllm,
}

impl std::str::FromStr for ImportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => ImportFormat::Auto,
            "llama-bench-json" | "json" => ImportFormat::LlamaBenchJson,
            "llama-bench-jsonl" | "jsonl" => ImportFormat::LlamaBenchJsonl,
            "llama-bench-csv" | "csv" => ImportFormat::LlamaBenchCsv,
            "llama-bench-sql" | "sql" => ImportFormat::LlamaBenchSql,
            "vllm" => ImportFormat::Vllm,
            _ => return Err(format!("unknown format {s:?}: auto, llama-bench-json, llama-bench-jsonl, llama-bench-csv, llama-bench-sql, vllm")),
        })
    }
}

/// What an import stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The runs created.
    pub runs: Vec<RunId>,
    /// Records stored.
    pub records: usize,
}

/// Reads `path` and stores its results; `label` names the runs (default: the file name).
///
/// # Errors
/// [`ImportError::Io`], [`ImportError::Parse`] (nothing is stored from a file that does not
/// parse), [`ImportError::UnknownFormat`], [`ImportError::Store`].
pub fn import_file(
    store: &Store,
    path: &Path,
    format: ImportFormat,
    label: Option<&str>,
) -> Result<ImportReport, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io { path: path.into(), source })?;
    let label = label.map(str::to_string).or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()));
    import_text(store, &text, path, format, label)
}

/// As [`import_file`], for text already read; `path` is only for messages.
///
/// # Errors
/// As [`import_file`].
pub fn import_text(
    store: &Store,
    text: &str,
    path: &Path,
    format: ImportFormat,
    label: Option<String>,
) -> Result<ImportReport, ImportError> {
    let format = match format {
        ImportFormat::Auto => detect(text, path).ok_or_else(|| ImportError::UnknownFormat(path.into()))?,
        f => f,
    };
    let bad = |line: usize, reason: String| ImportError::Parse { path: path.into(), line, reason };
    let rows: Vec<Map<String, Json>> = match format {
        ImportFormat::LlamaBenchJson | ImportFormat::Vllm => match serde_json::from_str::<Json>(text) {
            Ok(Json::Array(a)) => a.into_iter().map(object).collect::<Result<_, _>>().map_err(|r| bad(0, r))?,
            Ok(Json::Object(o)) => vec![o],
            Ok(_) => return Err(bad(0, "expected a JSON array or object".into())),
            Err(e) => return Err(bad(e.line(), e.to_string())),
        },
        ImportFormat::LlamaBenchJsonl => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str::<Json>(l).map_err(|e| e.to_string()).and_then(object).map_err(|r| bad(i + 1, r))
            })
            .collect::<Result<_, _>>()?,
        ImportFormat::LlamaBenchCsv => csv_rows(text).map_err(|(line, r)| bad(line, r))?,
        ImportFormat::LlamaBenchSql => sql_rows(text).map_err(|(line, r)| bad(line, r))?,
        ImportFormat::Auto => unreachable!("resolved above"),
    };
    // Every row is understood before anything is written: a file with a foreign row stores
    // nothing, not its first half.
    let converted = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            if row.contains_key("request_throughput") {
                Ok(replay_row(row, label.clone()))
            } else if row.contains_key("build_commit") && (row.contains_key("n_prompt") || row.contains_key("avg_ts")) {
                Ok(bench_row(row, label.clone(), format))
            } else {
                Err(bad(i + 1, "neither a llama-bench record nor a vLLM result".into()))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut report = ImportReport::default();
    let mut runs: BTreeMap<(String, String, String), RunId> = BTreeMap::new();
    for (i, (meta, rec)) in converted.into_iter().enumerate() {
        // One run per build and machine (and per replay result, each its own run).
        let key = if rec.kind == "replay" {
            (format!("replay-{i}"), String::new(), String::new())
        } else {
            (meta.build_commit.clone(), meta.build_number.to_string(), meta.machine.clone())
        };
        let run = match runs.get(&key) {
            Some(r) => *r,
            None => {
                let r = store.insert_run(&meta)?;
                report.runs.push(r);
                runs.insert(key, r);
                r
            }
        };
        store.insert_record(run, &rec)?;
        report.records += 1;
    }
    Ok(report)
}

fn object(v: Json) -> Result<Map<String, Json>, String> {
    match v {
        Json::Object(o) => Ok(o),
        _ => Err("expected a JSON object".into()),
    }
}

fn detect(text: &str, path: &Path) -> Option<ImportFormat> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let t = text.trim_start();
    Some(match ext {
        "jsonl" => ImportFormat::LlamaBenchJsonl,
        "csv" => ImportFormat::LlamaBenchCsv,
        "sql" => ImportFormat::LlamaBenchSql,
        _ if t.starts_with('[') => ImportFormat::LlamaBenchJson,
        _ if t.starts_with('{') => {
            if serde_json::from_str::<Json>(text).is_ok() {
                if text.contains("\"request_throughput\"") {
                    ImportFormat::Vllm
                } else {
                    ImportFormat::LlamaBenchJson
                }
            } else {
                ImportFormat::LlamaBenchJsonl
            }
        }
        _ if t.starts_with("CREATE TABLE") || t.starts_with("INSERT INTO") || t.starts_with("--") => {
            ImportFormat::LlamaBenchSql
        }
        _ if t.starts_with("build_commit,") => ImportFormat::LlamaBenchCsv,
        _ => return None,
    })
}

fn str_of(row: &Map<String, Json>, k: &str) -> String {
    match row.get(k) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn num_of(row: &Map<String, Json>, k: &str) -> Option<f64> {
    match row.get(k)? {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A parameter as llama-bench prints it in text formats (bools 0/1, floats with 6 decimals),
/// whatever format it was read from, so imported and benchkit rows join.
fn param_text(name: &str, v: &Json) -> String {
    use crate::bench::FieldType;
    let ty = crate::bench::field_type(name);
    match (ty, v) {
        (_, Json::Bool(b)) => if *b { "1" } else { "0" }.into(),
        (Some(FieldType::Bool), Json::String(s)) if s == "true" || s == "false" => {
            if s == "true" { "1" } else { "0" }.into()
        }
        (Some(FieldType::Float), v) => match v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(x) => format!("{x:.6}"),
            None => str_value(v),
        },
        (_, v) => str_value(v),
    }
}

fn str_value(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        v => v.to_string(),
    }
}

fn bench_row(row: &Map<String, Json>, label: Option<String>, format: ImportFormat) -> (RunMeta, StoredRecord) {
    // benchkit's own output carries everything: take it as the type it is.
    if row.contains_key("provenance") {
        if let Ok(r) = serde_json::from_value::<crate::bench::BenchRecord>(Json::Object(row.clone())) {
            return (RunMeta::from_provenance("bench", &r.provenance).label(label), StoredRecord::from(&r));
        }
    }
    let commit = str_of(row, "build_commit");
    let meta = RunMeta {
        kind: "bench".into(),
        source: "llama-bench".into(),
        label,
        started_at: str_of(row, "test_time"),
        benchkit_version: None,
        build_commit: if commit.is_empty() { "unknown".into() } else { commit },
        build_number: num_of(row, "build_number").unwrap_or(0.0) as u64,
        machine: machine_name(&str_of(row, "cpu_info"), &str_of(row, "gpu_info")),
        host: None,
        status: "ok".into(),
        error: None,
        provenance: serde_json::json!({
            "imported": match format {
                ImportFormat::LlamaBenchJson => "llama-bench json",
                ImportFormat::LlamaBenchJsonl => "llama-bench jsonl",
                ImportFormat::LlamaBenchCsv => "llama-bench csv",
                _ => "llama-bench sql",
            },
            "backends": str_of(row, "backends"),
            "cpu_info": str_of(row, "cpu_info"),
            "gpu_info": str_of(row, "gpu_info"),
        }),
    };
    let params = row
        .iter()
        .filter(|(k, _)| {
            !super::record::BENCH_NON_KEYS.contains(&k.as_str())
                && k.as_str() != "provenance"
                && k.as_str() != "telemetry"
        })
        .map(|(k, v)| (k.clone(), param_text(k, v)))
        .collect();
    let n = |k| num_of(row, k).unwrap_or(0.0) as u64;
    let samples: Vec<f64> = row
        .get("samples_ts")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_f64).collect())
        .unwrap_or_default();
    let ts = if samples.is_empty() {
        Metric::summary("t/s", true, num_of(row, "avg_ts").unwrap_or(f64::NAN), num_of(row, "stddev_ts"), 0)
    } else {
        Metric::from_samples("t/s", true, samples)
    };
    let rec = StoredRecord {
        kind: "bench".into(),
        name: bench_test_name(n("n_prompt"), n("n_gen"), n("n_depth")),
        model: str_of(row, "model_type"),
        status: "ok".into(),
        error: None,
        params,
        metrics: BTreeMap::from([("ts".to_string(), ts)]),
        telemetry: None,
        result: Json::Object(row.clone()),
    };
    (meta, rec)
}

fn replay_row(row: &Map<String, Json>, label: Option<String>) -> (RunMeta, StoredRecord) {
    let v = Json::Object(row.clone());
    if row.contains_key("provenance") {
        if let Ok(r) = serde_json::from_value::<crate::Provenance>(row["provenance"].clone()) {
            #[cfg(feature = "replay")]
            if let Ok(full) = serde_json::from_value::<crate::replay::ReplayResult>(v.clone()) {
                return (RunMeta::from_provenance("replay", &r).label(label), StoredRecord::from(&full));
            }
            let meta = RunMeta::from_provenance("replay", &r).label(label.clone());
            return (meta, vllm_record(row, v));
        }
    }
    // vLLM's `date` is local time, `%Y%m%d-%H%M%S`.
    let date = str_of(row, "date");
    let started_at = chrono::NaiveDateTime::parse_from_str(&date, "%Y%m%d-%H%M%S")
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or(date);
    let meta = RunMeta {
        kind: "replay".into(),
        source: "vllm".into(),
        label,
        started_at,
        benchkit_version: None,
        build_commit: "unknown".into(),
        build_number: 0,
        machine: "unknown".into(),
        host: None,
        status: "ok".into(),
        error: None,
        provenance: serde_json::json!({ "imported": "vllm benchmark json", "backend": str_of(row, "backend") }),
    };
    (meta, vllm_record(row, v))
}

fn vllm_record(row: &Map<String, Json>, v: Json) -> StoredRecord {
    let completed = num_of(row, "completed").unwrap_or(0.0);
    StoredRecord {
        kind: "replay".into(),
        name: "replay".into(),
        model: str_of(row, "model_id"),
        status: if completed > 0.0 { "ok" } else { "failed" }.into(),
        error: (completed == 0.0).then(|| "no request completed".to_string()),
        params: replay_params(&v),
        metrics: replay_metrics(&v),
        telemetry: row.get("telemetry").cloned(),
        result: v,
    }
}

/// RFC 4180 csv with a header line: quoted fields, `""` for a quote, newlines inside quotes.
fn csv_rows(text: &str) -> Result<Vec<Map<String, Json>>, (usize, String)> {
    let mut records: Vec<(usize, Vec<String>)> = Vec::new();
    let (mut field, mut row, mut quoted, mut line) = (String::new(), Vec::new(), false, 1usize);
    let mut start_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                records.push((start_line, std::mem::take(&mut row)));
                line += 1;
                start_line = line;
            }
            (false, '\r') => {}
            (_, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
        }
    }
    if quoted {
        return Err((start_line, "a quoted field does not end (the file is cut off)".into()));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        records.push((start_line, row));
    }
    records.retain(|(_, r)| !(r.len() == 1 && r[0].trim().is_empty()));
    let Some((_, header)) = records.first().cloned() else { return Ok(Vec::new()) };
    records[1..]
        .iter()
        .map(|(l, r)| {
            if r.len() != header.len() {
                return Err((*l, format!("{} fields, the header has {}", r.len(), header.len())));
            }
            Ok(header.iter().cloned().zip(r.iter().map(|v| Json::String(v.clone()))).collect())
        })
        .collect()
}

/// llama-bench's sql: `CREATE TABLE ...;` then `INSERT INTO t (cols) VALUES (vals);` lines.
/// Parsed, not executed: an imported file runs no SQL.
fn sql_rows(text: &str) -> Result<Vec<Map<String, Json>>, (usize, String)> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        let Some(rest) = l.strip_prefix("INSERT INTO ") else { continue };
        let err = |r: &str| (i + 1, r.to_string());
        let open = rest.find('(').ok_or_else(|| err("INSERT without a column list"))?;
        let close = rest[open..].find(')').ok_or_else(|| err("unterminated column list"))? + open;
        let cols: Vec<String> = rest[open + 1..close].split(',').map(|c| c.trim().to_string()).collect();
        let after = rest[close + 1..].trim_start();
        let vals = after.strip_prefix("VALUES").ok_or_else(|| err("INSERT without VALUES"))?.trim_start();
        let vals = vals.strip_prefix('(').ok_or_else(|| err("VALUES without ("))?;
        let values = sql_values(vals).ok_or_else(|| err("malformed VALUES (the file may be cut off)"))?;
        if values.len() != cols.len() {
            return Err(err(&format!("{} values for {} columns", values.len(), cols.len())));
        }
        out.push(cols.into_iter().zip(values).collect());
    }
    Ok(out)
}

/// `'text', 12, 1.5, NULL);` as values; `None` when it does not close.
fn sql_values(s: &str) -> Option<Vec<Json>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek()? {
            '\'' => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next()? {
                        '\'' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            v.push('\'');
                        }
                        '\'' => break,
                        c => v.push(c),
                    }
                }
                out.push(Json::String(v));
            }
            _ => {
                let mut v = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ',' || c == ')' {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                let v = v.trim();
                out.push(if v.eq_ignore_ascii_case("NULL") { Json::Null } else { Json::String(v.to_string()) });
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next()? {
            ',' => continue,
            ')' => return Some(out),
            _ => return None,
        }
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportFormat {
    /// One JSON object per record, with its run.
    Jsonl,
    /// One row per record: run and record keys, parameters, then each metric's mean, stddev, n.
    Csv,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            _ => Err(format!("unknown export format {s:?}: jsonl or csv")),
        }
    }
}

pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `entries` to `out`.
///
/// # Errors
/// The writer's I/O errors.
pub fn export(entries: &[Entry], format: ExportFormat, mut out: impl Write) -> std::io::Result<()> {
    match format {
        ExportFormat::Jsonl => {
            for e in entries {
                serde_json::to_writer(&mut out, e)?;
                out.write_all(b"\n")?;
            }
        }
        ExportFormat::Csv => {
            const FIXED: &[&str] = &[
                "run",
                "source",
                "build_commit",
                "build_number",
                "machine",
                "started_at",
                "kind",
                "test",
                "model",
                "status",
            ];
            let params: std::collections::BTreeSet<&str> =
                entries.iter().flat_map(|e| e.record.params.keys().map(String::as_str)).collect();
            let metrics: std::collections::BTreeSet<&str> =
                entries.iter().flat_map(|e| e.record.metrics.keys().map(String::as_str)).collect();
            let mut header: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
            header.extend(params.iter().filter(|p| !FIXED.contains(p)).map(|p| p.to_string()));
            for m in &metrics {
                header.extend([format!("{m}_mean"), format!("{m}_stddev"), format!("{m}_n")]);
            }
            writeln!(out, "{}", header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","))?;
            for e in entries {
                let mut row: Vec<String> = FIXED.iter().map(|k| e.value(k).unwrap_or_default()).collect();
                row.extend(
                    params
                        .iter()
                        .filter(|p| !FIXED.contains(p))
                        .map(|p| e.record.params.get(*p).cloned().unwrap_or_default()),
                );
                for m in &metrics {
                    let metric = e.record.metrics.get(*m);
                    let f = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
                    row.push(f(metric.and_then(|x| x.mean)));
                    row.push(f(metric.and_then(|x| x.stddev)));
                    row.push(metric.map(|x| x.n.to_string()).unwrap_or_default());
                }
                writeln!(out, "{}", row.iter().map(|v| csv_field(v)).collect::<Vec<_>>().join(","))?;
            }
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_commas_and_a_cut_off_file() {
        let rows = csv_rows("a,b\n\"x, \"\"y\"\"\",2\n").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["a"], "x, \"y\"");
        assert_eq!(rows[0]["b"], "2");
        assert!(csv_rows("a,b\n\"x,2\n").is_err());
        assert!(csv_rows("a,b\n1,2,3\n").is_err());
    }

    #[test]
    fn sql_values_parse_quotes_numbers_and_null() {
        let rows = sql_rows("CREATE TABLE IF NOT EXISTS test (a TEXT, b INTEGER, c REAL);\nINSERT INTO test (a, b, c) VALUES ('it''s, ok', 12, NULL);\n").unwrap();
        assert_eq!(rows[0]["a"], "it's, ok");
        assert_eq!(rows[0]["b"], "12");
        assert_eq!(rows[0]["c"], Json::Null);
        assert!(sql_rows("INSERT INTO test (a, b) VALUES ('x', 1").is_err());
        assert!(sql_rows("INSERT INTO test (a, b) VALUES ('x');").is_err());
    }

    #[test]
    fn params_are_spelled_as_llama_bench_prints_them() {
        assert_eq!(param_text("embeddings", &Json::Bool(true)), "1");
        assert_eq!(param_text("embeddings", &Json::String("0".into())), "0");
        assert_eq!(param_text("n_threads", &serde_json::json!(4)), "4");
        assert_eq!(param_text("type_k", &Json::String("f16".into())), "f16");
    }

    #[test]
    fn formats_are_detected() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(detect("[{}]", &p("x.json")), Some(ImportFormat::LlamaBenchJson));
        assert_eq!(detect("{\"a\":1}\n{\"a\":2}\n", &p("x")), Some(ImportFormat::LlamaBenchJsonl));
        assert_eq!(detect("{\"request_throughput\": 1}", &p("r.json")), Some(ImportFormat::Vllm));
        assert_eq!(detect("build_commit,build_number\n", &p("x.txt")), Some(ImportFormat::LlamaBenchCsv));
        assert_eq!(detect("hello", &p("x.txt")), None);
    }
}
