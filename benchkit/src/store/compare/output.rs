//! A comparison as a markdown table (what `compare-llama-bench.py` pastes into pull requests,
//! with the interval, p and verdict added) or as CSV. JSON is the types' serde form.

use std::fmt::Write as _;

use super::{Comparison, Row, Side};
use crate::store::import::csv_field;

fn runs(r: &[crate::store::RunId]) -> String {
    r.iter().map(|r| r.0.to_string()).collect::<Vec<_>>().join(", ")
}

fn value(s: &Side, unit: &str) -> String {
    match s.stddev {
        Some(sd) => format!("{:.2} ± {:.2} {unit}", s.mean, sd),
        None => format!("{:.2} {unit}", s.mean),
    }
}

fn ci(r: &Row) -> String {
    r.ci.map_or_else(|| "-".into(), |[lo, hi]| format!("[{lo:.3}, {hi:.3}]"))
}

fn p(r: &Row) -> String {
    r.p.map_or_else(|| "-".into(), |p| if p < 0.001 { format!("{p:.1e}") } else { format!("{p:.3}") })
}

/// The comparison as markdown: what was compared, the shared settings, then one row per test
/// and metric with only the differing key columns.
pub fn to_markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "baseline: {} (run {})  ", c.baseline, runs(&c.baseline_runs));
    let _ = writeln!(s, "candidate: {} (run {})  ", c.candidate, runs(&c.candidate_runs));
    if !c.common.is_empty() {
        let common: Vec<String> = c.common.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "same in every row: {}  ", common.join(", "));
    }
    let _ = writeln!(
        s,
        "verdict: a change beyond {:.1}% whose 95% CI excludes 1 and whose Mann-Whitney p <= {}\n",
        c.threshold * 100.0,
        c.alpha
    );
    let mut header = vec!["model".to_string(), "test".to_string()];
    header.extend(c.columns.iter().cloned());
    header.extend(["metric", "baseline", "candidate", "ratio", "95% CI", "p", "verdict"].map(String::from));
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let numeric = ["baseline", "candidate", "ratio", "p"];
    let align: Vec<&str> = header.iter().map(|h| if numeric.contains(&h.as_str()) { "---:" } else { "---" }).collect();
    let _ = writeln!(s, "| {} |", align.join(" | "));
    for r in &c.rows {
        let mut cells = vec![r.model.clone(), r.test.clone()];
        cells.extend(c.columns.iter().map(|k| r.key.get(k).cloned().unwrap_or_default()));
        cells.extend([
            r.metric.clone(),
            value(&r.baseline, &r.unit),
            value(&r.candidate, &r.unit),
            format!("{:.3}", r.ratio),
            ci(r),
            p(r),
            r.verdict.label(&r.unit).to_string(),
        ]);
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    let [b, k] = c.unmatched;
    if b + k > 0 {
        let _ = writeln!(s, "\n{b} baseline and {k} candidate configuration(s) had no counterpart.");
    }
    if !c.ignored.is_empty() {
        let _ = writeln!(s, "\nnot joined on (recorded by only some records): {}", c.ignored.join(", "));
    }
    s
}

/// The CSV columns of a row's statistics, after whatever names the row.
pub const STAT_COLUMNS: [&str; 13] = [
    "metric",
    "unit",
    "baseline_mean",
    "baseline_stddev",
    "baseline_n",
    "candidate_mean",
    "candidate_stddev",
    "candidate_n",
    "ratio",
    "ci_low",
    "ci_high",
    "p",
    "verdict",
];

/// A row's statistics as CSV cells, in [`STAT_COLUMNS`] order (absent values empty).
pub fn stat_cells(r: &Row) -> [String; 13] {
    let opt = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
    [
        r.metric.clone(),
        r.unit.clone(),
        r.baseline.mean.to_string(),
        opt(r.baseline.stddev),
        r.baseline.n.to_string(),
        r.candidate.mean.to_string(),
        opt(r.candidate.stddev),
        r.candidate.n.to_string(),
        r.ratio.to_string(),
        opt(r.ci.map(|c| c[0])),
        opt(r.ci.map(|c| c[1])),
        opt(r.p),
        r.verdict.as_str().to_string(),
    ]
}

/// The comparison as CSV: one row per test and metric, every statistic in its own column.
pub fn to_csv(c: &Comparison) -> String {
    let mut header: Vec<String> = ["kind", "model", "test"].map(String::from).to_vec();
    header.extend(c.columns.iter().cloned());
    header.extend(STAT_COLUMNS.map(String::from));
    let mut s = header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(",");
    s.push('\n');
    for r in &c.rows {
        let mut cells = vec![r.kind.clone(), r.model.clone(), r.test.clone()];
        cells.extend(c.columns.iter().map(|k| r.key.get(k).cloned().unwrap_or_default()));
        cells.extend(stat_cells(r));
        s.push_str(&cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
        s.push('\n');
    }
    s
}
