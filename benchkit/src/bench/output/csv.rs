//! llama-bench's csv: its header line, then one quoted row per record.

use super::super::record::{BenchRecord, FIELDS, LLAMA_BENCH_FIELDS};
use super::field_value;

/// The header line.
pub(super) fn header() -> String {
    format!("{}\n", LLAMA_BENCH_FIELDS.join(","))
}

/// One record's row; a failed record has none (see [`super::Writer::write_record`]).
pub(super) fn row(r: &BenchRecord) -> String {
    if !r.status.is_ok() {
        return String::new();
    }
    let vals: Vec<String> = FIELDS.iter().map(|f| format!("\"{}\"", field_value(r, f).replace('"', "\"\""))).collect();
    format!("{}\n", vals.join(","))
}
