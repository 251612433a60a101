//! `benchkit experiment report`: each treatment's outcome and main metrics, and each treatment
//! compared with a baseline treatment by [`crate::store::compare`] (ratio with a bootstrap CI,
//! Mann-Whitney p, verdict).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::{label_prefix, parse_label, ExperimentError};
use crate::store::compare::{compare, stat_cells, CompareConfig, Comparison, STAT_COLUMNS};
use crate::store::import::csv_field;
use crate::store::{Entry, Filter, RunId, Store};

/// What a report is asked.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// The experiment.
    pub name: String,
    /// The baseline treatment's id; default: the first one with a completed run.
    pub baseline: Option<String>,
    /// Metrics to compare; empty: all.
    pub metrics: Vec<String>,
    /// A change smaller than this fraction is no change.
    pub threshold: f64,
    /// The largest p that counts as a change.
    pub alpha: f64,
    /// The bootstrap's seed.
    pub seed: u64,
}

impl ReportConfig {
    /// The report of `name`, with `compare`'s defaults.
    pub fn new(name: impl Into<String>) -> Self {
        let d = CompareConfig::new(Filter::all(), Filter::all());
        ReportConfig {
            name: name.into(),
            baseline: None,
            metrics: Vec::new(),
            threshold: d.threshold,
            alpha: d.alpha,
            seed: d.seed,
        }
    }
}

/// A metric's stored summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSummary {
    /// The mean.
    pub mean: Option<f64>,
    /// The standard deviation.
    pub stddev: Option<f64>,
    /// The unit.
    pub unit: String,
    /// How many measurements.
    pub n: u64,
}

/// One treatment: its outcome and, when it completed, its records' metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreatmentRow {
    /// Its id.
    pub treatment: String,
    /// Factor levels.
    pub levels: BTreeMap<String, String>,
    /// The newest completed run's status, else the newest run's.
    pub status: String,
    /// That run.
    pub run_id: RunId,
    /// How many runs it has (retries).
    pub attempts: usize,
    /// What went wrong, for a status other than `ok`.
    pub error: Option<String>,
    /// Each record of a completed run.
    pub records: Vec<RecordSummary>,
}

/// One record of a treatment's run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordSummary {
    /// The test (`replay`, `pp512`, ...).
    pub test: String,
    /// `ok`, or why it is not comparable (`invalid`: a saturated client, ...).
    pub status: String,
    /// What its status means.
    pub error: Option<String>,
    /// Its metrics.
    pub metrics: BTreeMap<String, MetricSummary>,
}

/// A treatment against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreatmentComparison {
    /// The baseline treatment.
    pub baseline: String,
    /// The other.
    pub candidate: String,
    /// The comparison, when their records join.
    pub comparison: Option<Comparison>,
    /// Why there is none.
    pub error: Option<String>,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    /// The experiment.
    pub name: String,
    /// The version of its file reported (the newest run's).
    pub hash: String,
    /// Runs of other versions of the file, not reported.
    pub other_versions: usize,
    /// The baseline treatment.
    pub baseline: Option<String>,
    /// Every treatment with a run, in the order they first ran.
    pub treatments: Vec<TreatmentRow>,
    /// Each other completed treatment against the baseline.
    pub comparisons: Vec<TreatmentComparison>,
}

/// The report of `config.name` from `store`.
///
/// # Errors
/// [`ExperimentError::NoRuns`], [`ExperimentError::NoBaseline`], [`ExperimentError::Store`].
pub fn report(store: &Store, config: &ReportConfig) -> Result<ExperimentReport, ExperimentError> {
    let name = &config.name;
    let prefix = label_prefix(name);
    let runs: Vec<_> = store
        .runs(&Filter::all())?
        .into_iter()
        .filter(|r| r.meta.label.as_deref().is_some_and(|l| l.starts_with(&prefix)))
        .collect();
    let parsed = |r: &crate::store::Run| {
        parse_label(name, r.meta.label.as_deref().unwrap_or_default()).map(|(t, h)| (t.to_string(), h.to_string()))
    };
    let hash = runs
        .iter()
        .rev()
        .find_map(parsed)
        .map(|(_, h)| h)
        .ok_or_else(|| ExperimentError::NoRuns { name: name.clone(), store: store.name().to_string() })?;
    let mut other_versions = 0;
    let mut order: Vec<String> = Vec::new();
    let mut by_treatment: BTreeMap<String, Vec<&crate::store::Run>> = BTreeMap::new();
    for r in &runs {
        match parsed(r) {
            Some((t, h)) if h == hash => {
                if !order.contains(&t) {
                    order.push(t.clone());
                }
                by_treatment.entry(t).or_default().push(r);
            }
            _ => other_versions += 1,
        }
    }
    let chosen: Vec<(&String, &crate::store::Run, usize)> = order
        .iter()
        .map(|t| {
            let rs = &by_treatment[t];
            let pick =
                rs.iter().rev().find(|r| r.meta.status == "ok").unwrap_or(rs.last().expect("a treatment has a run"));
            (t, *pick, rs.len())
        })
        .collect();
    let ok_ids: Vec<String> = chosen.iter().filter(|c| c.1.meta.status == "ok").map(|c| c.1.id.0.to_string()).collect();
    let entries = if ok_ids.is_empty() {
        Vec::new()
    } else {
        store.entries(&Filter::parse(&format!("run={}", ok_ids.join("|")))?)?
    };
    let of_run = |id: RunId| -> Vec<Entry> { entries.iter().filter(|e| e.run.id == id).cloned().collect() };

    let mut treatments = Vec::new();
    for (t, run, attempts) in &chosen {
        let recs = of_run(run.id);
        let mut levels: BTreeMap<String, String> = recs
            .first()
            .map(|e| {
                e.record
                    .params
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix("exp.")?.to_string(), v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        if levels.is_empty() {
            levels =
                t.split('+').filter_map(|p| p.split_once('=')).map(|(f, l)| (f.to_string(), l.to_string())).collect();
        }
        let records = recs
            .iter()
            .map(|e| {
                let m =
                    e.record.metrics.iter().filter(|(k, _)| config.metrics.is_empty() || config.metrics.contains(k));
                let m = m.map(|(k, m)| {
                    (k.clone(), MetricSummary { mean: m.mean, stddev: m.stddev, unit: m.unit.clone(), n: m.n })
                });
                RecordSummary {
                    test: e.record.name.clone(),
                    status: e.record.status.clone(),
                    error: e.record.error.clone(),
                    metrics: m.collect(),
                }
            })
            .collect();
        treatments.push(TreatmentRow {
            treatment: (*t).clone(),
            levels,
            status: run.meta.status.clone(),
            run_id: run.id,
            attempts: *attempts,
            error: run.meta.error.clone(),
            records,
        });
    }

    let completed: Vec<&TreatmentRow> = treatments.iter().filter(|t| t.status == "ok").collect();
    let baseline = match &config.baseline {
        Some(b) => {
            Some(completed.iter().find(|t| &t.treatment == b).copied().ok_or_else(|| ExperimentError::NoBaseline {
                name: name.clone(),
                baseline: b.clone(),
                known: completed.iter().map(|t| t.treatment.as_str()).collect::<Vec<_>>().join(", "),
            })?)
        }
        None => completed.first().copied(),
    };
    let mut comparisons = Vec::new();
    if let Some(base) = baseline {
        for cand in completed.iter().filter(|t| t.treatment != base.treatment) {
            let entries = without_differing_params(of_run(base.run_id), of_run(cand.run_id));
            let sel = |id: RunId| Filter::parse(&format!("run={}", id.0));
            let mut cfg = CompareConfig::new(sel(base.run_id)?, sel(cand.run_id)?);
            cfg.metrics.clone_from(&config.metrics);
            (cfg.threshold, cfg.alpha, cfg.seed) = (config.threshold, config.alpha, config.seed);
            let (comparison, error) = match compare(&entries, &cfg) {
                Ok(mut c) => {
                    c.baseline.clone_from(&base.treatment);
                    c.candidate.clone_from(&cand.treatment);
                    (Some(c), None)
                }
                Err(e) => (None, Some(not_compared(base, cand, &e))),
            };
            comparisons.push(TreatmentComparison {
                baseline: base.treatment.clone(),
                candidate: cand.treatment.clone(),
                comparison,
                error,
            });
        }
    }
    Ok(ExperimentReport {
        name: name.clone(),
        hash,
        other_versions,
        baseline: baseline.map(|b| b.treatment.clone()),
        treatments,
        comparisons,
    })
}

/// Why two treatments were not compared: a side whose records are not `ok` says why.
fn not_compared(base: &TreatmentRow, cand: &TreatmentRow, e: &crate::store::compare::CompareError) -> String {
    for (side, t) in [("baseline", base), ("candidate", cand)] {
        if let Some(r) =
            t.records.iter().find(|r| r.status != "ok").filter(|_| t.records.iter().all(|r| r.status != "ok"))
        {
            let why = r.error.as_deref().unwrap_or("no reason recorded");
            return format!("the {side} {}'s records are {}: {why}", t.treatment, r.status);
        }
    }
    e.to_string()
}

/// Both sides' records without the parameters whose one value differs between the sides (the
/// factors, and what they set: `request_rate`, ...): the rest is what records join on.
fn without_differing_params(base: Vec<Entry>, cand: Vec<Entry>) -> Vec<Entry> {
    let values = |side: &[Entry], k: &str| -> BTreeSet<String> {
        side.iter().filter_map(|e| e.record.params.get(k).cloned()).collect()
    };
    let keys: BTreeSet<String> = base.iter().chain(&cand).flat_map(|e| e.record.params.keys().cloned()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            let (a, b) = (values(&base, k), values(&cand, k));
            a.len() == 1 && b.len() == 1 && a != b
        })
        .collect();
    let mut all: Vec<Entry> = base.into_iter().chain(cand).collect();
    for e in &mut all {
        for k in &differing {
            e.record.params.remove(k);
        }
    }
    all
}

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.2}"))
}

/// The report as markdown: the treatments' table, then one comparison per treatment.
pub fn to_markdown(r: &ExperimentReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# experiment {} (file version {})\n", r.name, r.hash);
    if r.other_versions > 0 {
        let _ = writeln!(s, "{} run(s) of other versions of the file are not reported.\n", r.other_versions);
    }
    let factors: BTreeSet<&String> = r.treatments.iter().flat_map(|t| t.levels.keys()).collect();
    let mut metrics: BTreeMap<&String, &String> = BTreeMap::new();
    for (name, m) in r.treatments.iter().flat_map(|t| t.records.iter().flat_map(|r| &r.metrics)) {
        metrics.entry(name).or_insert(&m.unit);
    }
    let mut header: Vec<String> = vec!["treatment".into()];
    header.extend(factors.iter().map(|f| f.to_string()));
    header.extend(["status", "run", "attempts", "test", "record"].map(String::from));
    header.extend(metrics.iter().map(|(m, u)| format!("{m} ({u})")));
    let _ = writeln!(s, "| {} |\n|{}", header.join(" | "), " --- |".repeat(header.len()));
    for t in &r.treatments {
        let mut cells = vec![t.treatment.clone()];
        cells.extend(factors.iter().map(|f| t.levels.get(*f).cloned().unwrap_or_default()));
        cells.extend([t.status.clone(), t.run_id.0.to_string(), t.attempts.to_string()]);
        if t.records.is_empty() {
            cells.extend(["-".to_string(), "-".to_string()]);
            cells.extend(metrics.keys().map(|_| "-".to_string()));
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
        for rec in &t.records {
            let mut row = cells.clone();
            row.extend([rec.test.clone(), rec.status.clone()]);
            row.extend(metrics.keys().map(|k| num(rec.metrics.get(*k).and_then(|m| m.mean))));
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
    }
    for t in r.treatments.iter().filter(|t| t.status != "ok") {
        let first = t.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("no error recorded");
        let _ = writeln!(s, "\n{}: {}: {first}", t.treatment, t.status);
    }
    for t in &r.treatments {
        for rec in t.records.iter().filter(|rec| rec.status != "ok") {
            let why = rec.error.as_deref().unwrap_or("no reason recorded");
            let _ = writeln!(s, "\n{} {}: record {} (not compared): {why}", t.treatment, rec.test, rec.status);
        }
    }
    for c in &r.comparisons {
        let _ = writeln!(s, "\n## {} vs {} (baseline)\n", c.candidate, c.baseline);
        match (&c.comparison, &c.error) {
            (Some(cmp), _) => s.push_str(&crate::store::compare::to_markdown(cmp)),
            (None, e) => {
                let _ = writeln!(s, "not compared: {}", e.as_deref().unwrap_or("?"));
            }
        }
    }
    s
}

/// The comparisons as CSV: one row per treatment, test and metric against the baseline.
pub fn to_csv(r: &ExperimentReport) -> String {
    let mut header = ["baseline", "candidate", "kind", "model", "test"].to_vec();
    header.extend(STAT_COLUMNS);
    let mut s = header.join(",");
    s.push('\n');
    for c in &r.comparisons {
        for row in c.comparison.iter().flat_map(|c| &c.rows) {
            let mut cells =
                vec![c.baseline.clone(), c.candidate.clone(), row.kind.clone(), row.model.clone(), row.test.clone()];
            cells.extend(stat_cells(row));
            s.push_str(&cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            s.push('\n');
        }
    }
    s
}
