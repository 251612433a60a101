//! Writers for llama-bench's output formats: md, csv, json, jsonl and sql.
//!
//! Each format keeps llama-bench's field names, order and layout, so llama.cpp's
//! `scripts/compare-llama-bench.py` and existing dashboards read benchkit's output unchanged.
//! csv and sql carry llama-bench's columns only; json and jsonl records add benchkit's own
//! fields after llama-bench's (after `samples_ns` and `samples_ts`), which llama-bench's readers
//! ignore.
//!
//! A [`Writer`] streams and finishes itself: it writes the header when it is created, each
//! record as soon as it is produced (flushed), and the footer when it is finished or dropped,
//! so an interrupted sweep keeps every finished record and no caller writes a sequence by hand.
//!
//! ```
//! use benchkit::bench::output::{MdColumns, OutputFormat, Writer};
//! let mut out = Vec::new();
//! let w = Writer::new(&mut out, OutputFormat::Csv, MdColumns::default())?;
//! // for record in sweep { w.write_record(&record)?; }
//! w.finish()?;
//! assert!(String::from_utf8(out).unwrap().starts_with("build_commit,build_number,"));
//! # Ok::<(), std::io::Error>(())
//! ```

mod csv;
mod json;
mod md;
mod sql;
#[cfg(test)]
mod tests;

use super::record::{BenchRecord, Field};
use std::io::{self, Write};

pub use md::MdColumns;

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

/// A llama-bench field's text value; a failed record's timings are written as zero.
fn field_value(r: &BenchRecord, field: &Field) -> String {
    if !r.status.is_ok() {
        match field.name {
            "avg_ns" | "stddev_ns" => return "0".to_string(),
            "avg_ts" | "stddev_ts" => return format!("{:.6}", 0.0),
            _ => {}
        }
    }
    field.value(r)
}

/// Streaming writer in one format: the header on creation, each record as it is produced
/// (flushed), the footer by [`Writer::finish`] or on drop. A run killed outright keeps every
/// finished record (for json, the file lacks only the closing bracket).
pub struct Writer<W: Write> {
    out: W,
    format: OutputFormat,
    columns: Vec<&'static str>,
    /// No json record written yet (no separating comma needed).
    first: bool,
    /// Build commit and number for md's footer.
    build: Option<(String, u64)>,
    /// The footer is written.
    finished: bool,
}

impl<W: Write> Writer<W> {
    /// A writer of `format` to `out`, its header written. `md_columns` matters for
    /// [`OutputFormat::Md`] only: the columns to show, chosen from the run's parameters as
    /// llama-bench chooses them (pass `MdColumns::from_records(&records)`, with planned records
    /// when writing as results come).
    ///
    /// # Errors
    /// I/O errors writing the header.
    pub fn new(out: W, format: OutputFormat, md_columns: MdColumns) -> io::Result<Self> {
        let columns = if format == OutputFormat::Md { md_columns.fields() } else { Vec::new() };
        let build = md_columns.build().cloned();
        let mut w = Writer { out, format, columns, first: true, build, finished: false };
        let header = match format {
            OutputFormat::Csv => csv::header(),
            OutputFormat::Json => "[\n".to_string(),
            OutputFormat::Jsonl => String::new(),
            OutputFormat::Sql => sql::header(),
            OutputFormat::Md => md::header(&w.columns),
        };
        w.out.write_all(header.as_bytes())?;
        w.out.flush()?;
        Ok(w)
    }

    /// The format written.
    pub fn format(&self) -> OutputFormat {
        self.format
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
        let text = match self.format {
            OutputFormat::Csv => csv::row(r),
            OutputFormat::Json if self.first => json::record(r),
            OutputFormat::Json => format!(",\n{}", json::record(r)),
            OutputFormat::Jsonl => json::line(r),
            OutputFormat::Sql => sql::row(r),
            OutputFormat::Md => md::row(r, &self.columns),
        };
        self.out.write_all(text.as_bytes())?;
        self.first = false;
        self.out.flush()
    }

    /// Writes the footer (json's `]`, md's `build: <commit> (<number>)` line, nothing for the
    /// other formats) and flushes. Dropping the writer does the same, ignoring errors.
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    pub fn finish(mut self) -> io::Result<()> {
        self.write_footer()
    }

    fn write_footer(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        let footer = match self.format {
            OutputFormat::Json => "\n]\n".to_string(),
            OutputFormat::Md => md::footer(self.build.as_ref()),
            _ => String::new(),
        };
        self.out.write_all(footer.as_bytes())?;
        self.out.flush()
    }
}

impl<W: Write> Drop for Writer<W> {
    fn drop(&mut self) {
        // An error here has nowhere to go; `finish` reports it.
        let _ = self.write_footer();
    }
}

/// All `records` in `format` (header, records, footer), as a string; md columns are chosen
/// from the records.
pub fn to_string(records: &[BenchRecord], format: OutputFormat) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    if let Ok(mut w) = Writer::new(&mut out, format, MdColumns::from_records(records)) {
        for r in records {
            let _ = w.write_record(r);
        }
        let _ = w.finish();
    }
    String::from_utf8_lossy(&out).into_owned()
}
