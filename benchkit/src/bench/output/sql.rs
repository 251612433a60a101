//! llama-bench's sql for SQLite: `CREATE TABLE IF NOT EXISTS llama_bench`, then one `INSERT`
//! per record.

use super::super::record::{BenchRecord, FieldType, FIELDS, LLAMA_BENCH_FIELDS};
use super::field_value;

/// The `CREATE TABLE` statement.
pub(super) fn header() -> String {
    let mut s = String::from("CREATE TABLE IF NOT EXISTS llama_bench (\n");
    for (i, f) in FIELDS.iter().enumerate() {
        let ty = match f.ty {
            FieldType::String => "TEXT",
            FieldType::Bool | FieldType::Int => "INTEGER",
            FieldType::Float => "REAL",
        };
        let comma = if i + 1 < FIELDS.len() { "," } else { "" };
        s.push_str(&format!("  {} {ty}{comma}\n", f.name));
    }
    s.push_str(");\n\n");
    s
}

/// One record's `INSERT`; a failed record gets an SQL comment naming the test and its error.
pub(super) fn row(r: &BenchRecord) -> String {
    if !r.status.is_ok() {
        let error = r.error.as_deref().unwrap_or("unknown error").replace(['\n', '\r'], " ");
        return format!("-- benchkit: {} ({}) failed: {error}\n", r.test, r.model_filename.replace(['\n', '\r'], " "));
    }
    let vals: Vec<String> = FIELDS.iter().map(|f| format!("'{}'", field_value(r, f).replace('\'', "''"))).collect();
    format!("INSERT INTO llama_bench ({}) VALUES ({});\n", LLAMA_BENCH_FIELDS.join(", "), vals.join(", "))
}
