//! Baseline against candidate: what `compare-llama-bench.py` does, with the statistics it lacks.
//!
//! Two [`Filter`]s pick the baseline's and the candidate's records (a commit, a build, a model,
//! a machine, a source, any parameter). Records are joined on every other key: the test, the
//! model and the machine unless selected on, and each parameter both sides record. Several
//! records of one side with the same key (repeated runs) pool their samples. Each joined row
//! gets the ratio of means with a bootstrap 95% interval, a two-sided Mann-Whitney U p-value and
//! a verdict: a change counts when the interval excludes 1, p is at most `alpha` and the change
//! is at least the noise `threshold`.
//!
//! Only the key columns whose values differ between rows are shown, as in
//! `compare-llama-bench.py`; the rest are listed once in [`Comparison::common`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Entry, Filter, RunId, RUN_KEYS};
use crate::stats::compare::{bootstrap_mean_ratio_ci, mann_whitney_p};

/// What a comparison is asked.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// Selects the baseline's records.
    pub baseline: Filter,
    /// Selects the candidate's records.
    pub candidate: Filter,
    /// Metrics to compare (`ts`, `ttft`, `ppl`, ...); empty: every metric both sides have.
    pub metrics: Vec<String>,
    /// A change smaller than this fraction is no change (default 0.02).
    pub threshold: f64,
    /// The largest p that counts as a change (default 0.05).
    pub alpha: f64,
    /// The bootstrap's seed, so a comparison prints the same interval every time.
    pub seed: u64,
}

impl CompareConfig {
    /// Baseline and candidate with the default threshold (2%), alpha (0.05) and seed.
    pub fn new(baseline: Filter, candidate: Filter) -> Self {
        CompareConfig { baseline, candidate, metrics: Vec::new(), threshold: 0.02, alpha: 0.05, seed: 0x5eed }
    }
}

/// What a comparison found for one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Better beyond the noise: faster, or lower latency, perplexity or energy.
    Improvement,
    /// Worse beyond the noise.
    Regression,
    /// Within the noise, or a change smaller than the threshold.
    NoChange,
    /// Fewer than two samples on a side: a ratio, but no test.
    Inconclusive,
}

impl Verdict {
    /// `improvement`, `regression`, `no change`, `inconclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improvement => "improvement",
            Verdict::Regression => "regression",
            Verdict::NoChange => "no change",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// The verdict in the metric's own words: `faster`/`slower` for speeds and latencies,
    /// `better`/`worse` for the rest (perplexity, KL divergence, energy).
    pub fn label(self, unit: &str) -> &'static str {
        let speed = matches!(unit, "t/s" | "tok/s" | "req/s" | "ms" | "s");
        match (self, speed) {
            (Verdict::Improvement, true) => "faster",
            (Verdict::Regression, true) => "slower",
            (Verdict::Improvement, false) => "better",
            (Verdict::Regression, false) => "worse",
            (v, _) => v.as_str(),
        }
    }
}

/// One side of a row: its pooled samples' summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The mean (of the samples; of the records' means where they stored no samples).
    pub mean: f64,
    /// The samples' standard deviation, or the stored one for a single summary.
    pub stddev: Option<f64>,
    /// How many samples (or measurements behind a stored mean).
    pub n: u64,
    /// The records pooled.
    pub records: Vec<i64>,
}

/// One joined row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `bench`, `perplexity`, `kl-divergence`, `replay`.
    pub kind: String,
    /// The test (`pp512`, `tg128`, `ppl`, `replay`).
    pub test: String,
    /// The model.
    pub model: String,
    /// The values of [`Comparison::columns`] for this row.
    pub key: BTreeMap<String, String>,
    /// The metric (`ts`, `ttft`, ...).
    pub metric: String,
    /// Its unit.
    pub unit: String,
    /// Whether a larger value is better.
    pub higher_is_better: bool,
    /// The baseline.
    pub baseline: Side,
    /// The candidate.
    pub candidate: Side,
    /// `candidate.mean / baseline.mean`.
    pub ratio: f64,
    /// Bootstrap 95% interval of the ratio of means, from the raw samples.
    pub ci: Option<[f64; 2]>,
    /// Two-sided Mann-Whitney U p-value of the samples.
    pub p: Option<f64>,
    /// What it means.
    pub verdict: Verdict,
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The baseline's filter, as given.
    pub baseline: String,
    /// The candidate's.
    pub candidate: String,
    /// The runs the baseline's records came from.
    pub baseline_runs: Vec<RunId>,
    /// The candidate's.
    pub candidate_runs: Vec<RunId>,
    /// The key columns whose values differ between rows, shown per row.
    pub columns: Vec<String>,
    /// The key values every row shares (`n_threads: 2`, ...), shown once.
    pub common: BTreeMap<String, String>,
    /// Parameters only some records have: not joined on.
    pub ignored: Vec<String>,
    /// The threshold used.
    pub threshold: f64,
    /// The alpha used.
    pub alpha: f64,
    /// The joined rows.
    pub rows: Vec<Row>,
    /// Baseline keys with no candidate record, and the reverse.
    pub unmatched: [usize; 2],
}

impl Comparison {
    /// Whether any row regressed.
    pub fn has_regression(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Regression)
    }

    /// Whether any row changed beyond the noise, either way.
    pub fn has_change(&self) -> bool {
        self.rows.iter().any(|r| matches!(r.verdict, Verdict::Regression | Verdict::Improvement))
    }
}

/// What cannot be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// One side selects no record with a measurement.
    #[error("the {side} ({filter}) selects no measured record")]
    Empty {
        /// `baseline` or `candidate`.
        side: &'static str,
        /// Its filter.
        filter: String,
    },
    /// The sides share no key: nothing joins.
    #[error(
        "no record of the baseline ({baseline}) joins one of the candidate ({candidate}); they differ in {differ}"
    )]
    NoJoin {
        /// The baseline's filter.
        baseline: String,
        /// The candidate's.
        candidate: String,
        /// The keys whose values never meet.
        differ: String,
    },
}

/// Parameters a test's name already spells out (`pp512`, `tg128 @ d4096`): joined on, never
/// shown as columns beside the test.
const IN_TEST_NAME: &[&str] = &["n_prompt", "n_gen", "n_depth"];

/// A record's join key: kind, test, model and machine (unless selected on), and parameters.
type Key = BTreeMap<String, String>;

/// Compares the baseline's records with the candidate's, both taken from `entries`.
///
/// # Errors
/// [`CompareError::Empty`] when a side selects no measured record, [`CompareError::NoJoin`]
/// when no record of one joins a record of the other.
pub fn compare(entries: &[Entry], config: &CompareConfig) -> Result<Comparison, CompareError> {
    let measured = |f: &Filter| -> Vec<&Entry> {
        entries.iter().filter(|e| e.record.status == "ok" && !e.record.metrics.is_empty() && f.matches(e)).collect()
    };
    let (base, cand) = (measured(&config.baseline), measured(&config.candidate));
    let text = |f: &Filter| f.to_string();
    for (side, f, v) in [("baseline", &config.baseline, &base), ("candidate", &config.candidate, &cand)] {
        if v.is_empty() {
            return Err(CompareError::Empty { side, filter: text(f) });
        }
    }
    let selected: BTreeSet<&str> = config.baseline.keys().chain(config.candidate.keys()).collect();
    // Join on the parameters every record of the same kind records; the others cannot be
    // matched.
    let both = || base.iter().chain(&cand);
    let mut shared: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut ignored: BTreeSet<String> = BTreeSet::new();
    for kind in both().map(|e| e.record.kind.as_str()).collect::<BTreeSet<_>>() {
        let of_kind = || both().filter(move |e| e.record.kind == kind);
        let all: BTreeSet<&str> = of_kind().flat_map(|e| e.record.params.keys().map(String::as_str)).collect();
        let keys = shared.entry(kind).or_default();
        for k in all.into_iter().filter(|k| !selected.contains(k) && !RUN_KEYS.contains(k)) {
            if of_kind().all(|e| e.record.params.contains_key(k)) {
                keys.insert(k);
            } else {
                ignored.insert(k.to_string());
            }
        }
    }
    let key_of = |e: &Entry| -> Key {
        let mut k = Key::new();
        k.insert("kind".into(), e.record.kind.clone());
        k.insert("test".into(), e.record.name.clone());
        for meta in ["model", "machine"] {
            if !selected.contains(meta) {
                k.insert(meta.into(), e.value(meta).unwrap_or_default());
            }
        }
        for p in &shared[e.record.kind.as_str()] {
            k.insert(p.to_string(), e.record.params[*p].clone());
        }
        k
    };
    let mut groups: [BTreeMap<Key, Vec<&Entry>>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for (i, side) in [&base, &cand].into_iter().enumerate() {
        for e in side {
            groups[i].entry(key_of(e)).or_default().push(e);
        }
    }
    let joined: Vec<&Key> = groups[0].keys().filter(|k| groups[1].contains_key(*k)).collect();
    if joined.is_empty() {
        // The keys of the first baseline record whose values no candidate record has.
        let first = groups[0].keys().next().expect("the baseline has records");
        let differ: Vec<String> = first
            .iter()
            .filter(|(k, v)| groups[1].keys().all(|b| b.get(*k) != Some(*v)))
            .map(|(k, _)| k.clone())
            .collect();
        return Err(CompareError::NoJoin {
            baseline: text(&config.baseline),
            candidate: text(&config.candidate),
            differ: if differ.is_empty() { "their keys".into() } else { differ.join(", ") },
        });
    }
    let unmatched = [
        groups[0].keys().filter(|k| !groups[1].contains_key(*k)).count(),
        groups[1].keys().filter(|k| !groups[0].contains_key(*k)).count(),
    ];

    // Columns that differ between the joined rows are shown; the rest once.
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for k in &joined {
        for (name, v) in k.iter() {
            values.entry(name).or_default().insert(v);
        }
    }
    let columns: Vec<String> = values
        .iter()
        .filter(|(name, v)| v.len() > 1 && !matches!(**name, "kind" | "test" | "model") && !IN_TEST_NAME.contains(name))
        .map(|(n, _)| n.to_string())
        .collect();
    let common: BTreeMap<String, String> = values
        .iter()
        .filter(|(name, v)| {
            v.len() == 1 && !matches!(**name, "kind" | "test" | "model") && !IN_TEST_NAME.contains(name)
        })
        .map(|(n, v)| (n.to_string(), v.iter().next().map_or_else(String::new, |s| s.to_string())))
        .collect();

    let mut rows = Vec::new();
    for k in joined {
        let (a, b) = (&groups[0][k], &groups[1][k]);
        let metric_names: BTreeSet<&String> = a
            .iter()
            .flat_map(|e| e.record.metrics.keys())
            .filter(|m| b.iter().any(|e| e.record.metrics.contains_key(*m)))
            .filter(|m| config.metrics.is_empty() || config.metrics.contains(m))
            .collect();
        for metric in metric_names {
            let (Some(sa), Some(sb)) = (side(a, metric), side(b, metric)) else { continue };
            let first = a.iter().find_map(|e| e.record.metrics.get(metric)).expect("the metric is on this side");
            rows.push(row(k, &columns, metric, first.unit.clone(), first.higher_is_better, sa, sb, config));
        }
    }
    rows.sort_by(|x, y| {
        (&x.kind, &x.model, &x.test, &x.key, &x.metric).cmp(&(&y.kind, &y.model, &y.test, &y.key, &y.metric))
    });
    let runs =
        |v: &[&Entry]| -> Vec<RunId> { v.iter().map(|e| e.run.id).collect::<BTreeSet<_>>().into_iter().collect() };
    Ok(Comparison {
        baseline: text(&config.baseline),
        candidate: text(&config.candidate),
        baseline_runs: runs(&base),
        candidate_runs: runs(&cand),
        columns,
        common,
        ignored: ignored.into_iter().collect(),
        threshold: config.threshold,
        alpha: config.alpha,
        rows,
        unmatched,
    })
}

/// A side's samples for one metric: every record's raw samples pooled, or their stored means
/// where they kept none.
struct Pooled {
    side: Side,
    samples: Vec<f64>,
}

fn side(entries: &[&Entry], metric: &str) -> Option<Pooled> {
    let mut samples = Vec::new();
    let mut means = Vec::new();
    let mut records = Vec::new();
    let mut n = 0;
    let mut stddev = None;
    for e in entries {
        let Some(m) = e.record.metrics.get(metric) else { continue };
        records.push(e.id);
        let finite: Vec<f64> = m.samples.iter().copied().filter(|s| s.is_finite()).collect();
        if finite.is_empty() {
            if let Some(mean) = m.mean.filter(|x| x.is_finite()) {
                means.push(mean);
                n += m.n.max(1);
                stddev = m.stddev;
            }
        } else {
            n += finite.len() as u64;
            samples.extend(finite);
        }
    }
    let (mean, stddev) = if samples.is_empty() {
        if means.is_empty() {
            return None;
        }
        let mean = means.iter().sum::<f64>() / means.len() as f64;
        (mean, if means.len() == 1 { stddev } else { finite(crate::stats::Moments::of(&means).sample_stddev()) })
    } else {
        let m = crate::stats::Moments::of(&samples);
        (m.mean(), finite(m.sample_stddev()))
    };
    // A side with only stored means has no raw samples to test; its means stand in for them.
    let pooled = if samples.is_empty() { means } else { samples };
    Some(Pooled { side: Side { mean, stddev, n, records }, samples: pooled })
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[allow(clippy::too_many_arguments)]
fn row(
    k: &Key,
    columns: &[String],
    metric: &str,
    unit: String,
    higher_is_better: bool,
    a: Pooled,
    b: Pooled,
    config: &CompareConfig,
) -> Row {
    let ratio = if a.side.mean == 0.0 { f64::NAN } else { b.side.mean / a.side.mean };
    let testable = a.samples.len() > 1 && b.samples.len() > 1;
    let ci = testable.then(|| bootstrap_mean_ratio_ci(&b.samples, &a.samples, config.seed)).flatten();
    let p = testable.then(|| mann_whitney_p(&b.samples, &a.samples)).flatten();
    let verdict = match (ci, p) {
        (Some([lo, hi]), Some(p)) if ratio.is_finite() => {
            if (lo > 1.0 || hi < 1.0) && p <= config.alpha && (ratio - 1.0).abs() >= config.threshold {
                if (ratio > 1.0) == higher_is_better {
                    Verdict::Improvement
                } else {
                    Verdict::Regression
                }
            } else {
                Verdict::NoChange
            }
        }
        _ => Verdict::Inconclusive,
    };
    Row {
        kind: k["kind"].clone(),
        test: k["test"].clone(),
        model: k.get("model").cloned().unwrap_or_default(),
        key: columns.iter().filter_map(|c| Some((c.clone(), k.get(c)?.clone()))).collect(),
        metric: metric.to_string(),
        unit,
        higher_is_better,
        baseline: a.side,
        candidate: b.side,
        ratio,
        ci,
        p,
        verdict,
    }
}

mod output;
pub use output::{stat_cells, to_csv, to_markdown, STAT_COLUMNS};

#[cfg(test)]
mod tests;
