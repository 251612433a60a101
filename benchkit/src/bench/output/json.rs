//! llama-bench's json and jsonl records: its keys, typing and number formatting, then
//! benchkit's own keys.

use super::super::record::{BenchRecord, Field, FieldType, FIELDS};
use super::field_value;

/// llama-bench's JSON string escaping (`"`, `\`, and control characters as `\u00XX`); other
/// characters pass through as UTF-8.
pub(super) fn json_string(s: &str) -> String {
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
fn json_field(r: &BenchRecord, field: &Field) -> String {
    let v = field_value(r, field);
    match field.ty {
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
pub(super) fn fmt_g6(x: f64) -> String {
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

/// Keys benchkit adds after llama-bench's, in order, each the [`BenchRecord`] field of that
/// name as JSON.
macro_rules! benchkit_fields {
    ($($name:ident),* $(,)?) => {
        pub(super) const BENCHKIT_FIELDS: &[(&str, fn(&BenchRecord) -> String)] =
            &[$((stringify!($name), |r: &BenchRecord| json_or_null(&r.$name))),*];
    };
}

benchkit_fields!(
    status,
    error,
    test,
    repetitions,
    warmup,
    prio,
    n_ctx,
    seed,
    model_file_bytes,
    model_arch,
    telemetry,
    provenance,
);

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

/// One record of a json array, indented as llama-bench indents it (no separator).
pub(super) fn record(r: &BenchRecord) -> String {
    let mut s = String::from("  {\n");
    for f in FIELDS {
        s.push_str(&format!("    \"{}\": {},\n", f.name, json_field(r, f)));
    }
    s.push_str(&format!("    \"samples_ns\": {},\n", samples_ns(r)));
    s.push_str(&format!("    \"samples_ts\": {}", samples_ts(r)));
    for (name, value) in BENCHKIT_FIELDS {
        s.push_str(&format!(",\n    \"{name}\": {}", value(r)));
    }
    s.push_str("\n  }");
    s
}

/// One jsonl line.
pub(super) fn line(r: &BenchRecord) -> String {
    let mut s = String::from("{");
    for f in FIELDS {
        s.push_str(&format!("\"{}\": {}, ", f.name, json_field(r, f)));
    }
    // llama-bench writes no space after this comma.
    s.push_str(&format!("\"samples_ns\": {},", samples_ns(r)));
    s.push_str(&format!("\"samples_ts\": {}", samples_ts(r)));
    for (name, value) in BENCHKIT_FIELDS {
        s.push_str(&format!(", \"{name}\": {}", value(r)));
    }
    s.push_str("}\n");
    s
}
