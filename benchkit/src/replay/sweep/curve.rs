//! The throughput-latency curve as text: a table row per point (printed as each run ends), the
//! same columns as CSV, and the conclusion in words.

use super::{Conclusion, SweepPoint};
use std::fmt::Write as _;

/// Column names, shared by the table and the CSV.
pub const COLUMNS: [&str; 16] = [
    "offered_rps",
    "achieved_rps",
    "output_tok_s",
    "goodput_rps",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "tpot_p50_ms",
    "tpot_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "e2el_p50_ms",
    "e2el_p99_ms",
    "completed",
    "failed",
    "meets_slo",
    "client",
];

const WIDTHS: [usize; 16] = [11, 12, 12, 11, 11, 11, 11, 11, 10, 10, 11, 11, 9, 6, 9, 7];

fn cells(p: &SweepPoint) -> [String; 16] {
    let ms = |v: f64| format!("{v:.2}");
    [
        p.offered.to_string(),
        format!("{:.3}", p.achieved_rps),
        format!("{:.1}", p.output_tps),
        p.goodput_rps.map_or_else(String::new, |g| format!("{g:.3}")),
        ms(p.ttft.p50_ms),
        ms(p.ttft.p99_ms),
        ms(p.tpot.p50_ms),
        ms(p.tpot.p99_ms),
        ms(p.itl.p50_ms),
        ms(p.itl.p99_ms),
        ms(p.e2el.p50_ms),
        ms(p.e2el.p99_ms),
        p.completed.to_string(),
        p.failed.to_string(),
        p.meets_slo.map_or_else(String::new, |m| if m { "yes" } else { "no" }.to_string()),
        if p.invalid.is_some() { "invalid" } else { "valid" }.to_string(),
    ]
}

fn aligned<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for (c, w) in cells.zip(WIDTHS) {
        let _ = write!(line, "{c:>w$} ");
    }
    line.trim_end().to_string()
}

/// The table's header line.
pub fn header() -> String {
    aligned(COLUMNS.iter().copied())
}

/// One point as a table row (empty cells: no goodput or no objectives).
pub fn row(p: &SweepPoint) -> String {
    aligned(cells(p).iter().map(String::as_str))
}

/// The whole table: header and a row per point.
pub fn table(points: &[SweepPoint]) -> String {
    std::iter::once(header()).chain(points.iter().map(row)).collect::<Vec<_>>().join("\n")
}

/// The CSV header line.
pub fn csv_header() -> String {
    COLUMNS.join(",")
}

/// One point as a CSV line.
pub fn csv_row(p: &SweepPoint) -> String {
    cells(p).join(",")
}

/// The whole CSV, header first, newline-terminated.
pub fn csv(points: &[SweepPoint]) -> String {
    std::iter::once(csv_header()).chain(points.iter().map(csv_row)).map(|l| l + "\n").collect()
}

/// The conclusion in one line.
pub fn conclusion(c: &Conclusion) -> String {
    match c {
        Conclusion::Rates => "every listed rate ran".to_string(),
        Conclusion::Saturation(s) if s.saturated => {
            format!("saturation at {:.3} req/s offered, {:.3} req/s achieved ({})", s.rate, s.achieved, s.reason)
        }
        Conclusion::Saturation(s) => {
            format!("not saturated: best {:.3} req/s achieved at {:.3} offered ({})", s.achieved, s.rate, s.reason)
        }
        Conclusion::MaxRate(m) => {
            let range = format!("searched {}..{} req/s, tolerance {} %", m.range[0], m.range[1], m.tolerance * 100.0);
            match (m.max_rate, m.failing_rate) {
                (Some(pass), Some(fail)) => {
                    format!("max rate meeting the SLOs: {pass:.3} req/s (fails at {fail:.3}; {range})")
                }
                (Some(pass), None) => {
                    format!("max rate meeting the SLOs: {pass:.3} req/s, the top of the range ({range})")
                }
                (None, _) => format!("no max rate: {} ({range})", m.reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ObjectiveCheck, SweepPoint, P50P99};
    use super::*;
    use crate::replay::{ReplayResult, RequestRate};

    fn point(rate: f64, meets: Option<bool>) -> SweepPoint {
        // Built from JSON, as a stored result is read back, so that new fields with defaults
        // need no change here.
        let mut v = serde_json::to_value(crate::replay::metrics::Summary::default()).unwrap();
        let extra = serde_json::json!({
            "backend": "http:x", "model_id": "m", "tokenizer_id": "t", "num_prompts": 4,
            "request_rate": rate, "burstiness": 1.0, "max_concurrency": null,
            "date": "20261205-000000", "provenance": crate::provenance::test_provenance(),
        });
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let result: ReplayResult = serde_json::from_value(v).unwrap();
        SweepPoint {
            offered: RequestRate::PerSecond(rate),
            achieved_rps: 3.5,
            output_tps: 14.0,
            goodput_rps: None,
            ttft: P50P99 { p50_ms: 10.0, p99_ms: 20.5 },
            tpot: P50P99::default(),
            itl: P50P99::default(),
            e2el: P50P99::default(),
            completed: 4,
            failed: 0,
            objectives: Vec::<ObjectiveCheck>::new(),
            meets_slo: meets,
            invalid: None,
            result,
        }
    }

    #[test]
    fn rows_and_csv_lines_have_every_column() {
        let pts = [point(1.0, Some(true)), point(2.5, Some(false)), point(4.0, None)];
        let t = table(&pts);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].contains("offered_rps") && lines[0].contains("meets_slo"));
        assert!(lines[1].contains("20.50") && lines[1].contains(" yes "), "{}", lines[1]);
        assert!(lines[2].trim_start().starts_with("2.5") && lines[2].contains(" no "));
        assert!(lines[3].ends_with("valid"));
        let c = csv(&pts);
        let rows: Vec<Vec<&str>> = c.lines().map(|l| l.split(',').collect()).collect();
        assert!(rows.iter().all(|r| r.len() == COLUMNS.len()));
        assert_eq!((rows[1][0], rows[1][1], rows[1][5], rows[3][14]), ("1", "3.500", "20.50", ""));
        assert_eq!(rows[1][15], "valid");
    }
}
