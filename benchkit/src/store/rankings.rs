//! Rankings of models, builds or machines by one metric: the mean over runs with a bootstrap
//! confidence interval, best first, as a table, as JSON, or in llm-benchmark's rankings shape
//! (what `benchkit results serve` answers at `/api/v1/benchmarks/rankings`).
//!
//! ```
//! use benchkit::store::rankings::{rankings, RankBy, RankMetric};
//! let entries = Vec::new(); // store.entries(&Filter::all())?
//! let ranked = rankings(&entries, "ttft".parse()?, RankBy::Model);
//! assert!(ranked.is_empty());
//! # Ok::<(), benchkit::store::rankings::RankError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Entry;
use crate::stats::compare::bootstrap_mean_ci;

/// Bootstrap seed: a fixed one, so that the same store always prints the same intervals.
const SEED: u64 = 0x6265_6e63_686b_6974;

/// A name that is not a metric or a grouping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RankError {
    /// Not one of [`RankMetric::ALL`]'s names.
    #[error("unknown metric {0:?}: expected one of ttft, tpot, e2e, rps, pp, tg, ppl, j_per_token")]
    Metric(String),
    /// Not `model`, `build` or `machine`.
    #[error("unknown ranking key {0:?}: expected model, build or machine")]
    By(String),
}

/// What a ranking ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RankMetric {
    /// Time to first token (replay `ttft`, ms).
    Ttft,
    /// Time per output token (replay `tpot`, ms).
    Tpot,
    /// End-to-end request latency (replay `e2el`, ms).
    E2e,
    /// Request throughput (replay `rps`, req/s).
    Rps,
    /// Prompt processing: bench `ts` of tests with a prompt and no generation.
    Pp,
    /// Text generation: bench `ts` of tests with no prompt.
    Tg,
    /// Perplexity (`ppl`).
    Ppl,
    /// Energy per token (`j_per_token`, any kind).
    JPerToken,
}

impl RankMetric {
    /// Every metric, in the order the API lists them.
    pub const ALL: [RankMetric; 8] = [
        RankMetric::Ttft,
        RankMetric::Tpot,
        RankMetric::E2e,
        RankMetric::Rps,
        RankMetric::Pp,
        RankMetric::Tg,
        RankMetric::Ppl,
        RankMetric::JPerToken,
    ];

    /// The name on the command line and in the API.
    pub fn name(self) -> &'static str {
        match self {
            RankMetric::Ttft => "ttft",
            RankMetric::Tpot => "tpot",
            RankMetric::E2e => "e2e",
            RankMetric::Rps => "rps",
            RankMetric::Pp => "pp",
            RankMetric::Tg => "tg",
            RankMetric::Ppl => "ppl",
            RankMetric::JPerToken => "j_per_token",
        }
    }

    /// The stored metric it reads.
    pub fn store_metric(self) -> &'static str {
        match self {
            RankMetric::Ttft => "ttft",
            RankMetric::Tpot => "tpot",
            RankMetric::E2e => "e2el",
            RankMetric::Rps => "rps",
            RankMetric::Pp | RankMetric::Tg => "ts",
            RankMetric::Ppl => "ppl",
            RankMetric::JPerToken => "j_per_token",
        }
    }

    /// Whether more is better: throughputs; latencies, perplexity and energy are better low.
    pub fn higher_is_better(self) -> bool {
        matches!(self, RankMetric::Rps | RankMetric::Pp | RankMetric::Tg)
    }

    /// The unit when no record says (a record's own unit wins).
    fn default_unit(self) -> &'static str {
        match self {
            RankMetric::Ttft | RankMetric::Tpot | RankMetric::E2e => "ms",
            RankMetric::Rps => "req/s",
            RankMetric::Pp | RankMetric::Tg => "t/s",
            RankMetric::Ppl => "",
            RankMetric::JPerToken => "J/token",
        }
    }

    /// Whether a record counts, and its value (the record's mean, else its samples' mean) and
    /// raw samples. `ts` means pp or tg only by the test's shape: a pp+tg test is neither.
    fn value(self, e: &Entry) -> Option<(f64, &[f64])> {
        let r = &e.record;
        if r.status != "ok" {
            return None;
        }
        let param = |k: &str| r.params.get(k).map(|v| v.trim());
        match self {
            RankMetric::Pp
                if r.kind != "bench"
                    || param("n_gen") != Some("0")
                    || matches!(param("n_prompt"), Some("0") | None) =>
            {
                return None;
            }
            RankMetric::Tg if r.kind != "bench" || param("n_prompt") != Some("0") => return None,
            _ => {}
        }
        let m = r.metrics.get(self.store_metric())?;
        let samples: &[f64] = &m.samples;
        let finite: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
        let mean = m
            .mean
            .filter(|v| v.is_finite())
            .or_else(|| (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64))?;
        Some((mean, samples))
    }
}

impl fmt::Display for RankMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RankMetric {
    type Err = RankError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        RankMetric::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(t))
            // The stored metric's own name for end-to-end latency reads the same.
            .or_else(|| t.eq_ignore_ascii_case("e2el").then_some(RankMetric::E2e))
            .ok_or_else(|| RankError::Metric(s.to_string()))
    }
}

/// What is ranked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RankBy {
    /// The record's model (llama.cpp's description, or the served model).
    #[default]
    Model,
    /// The llama.cpp build: short commit and build number, `3f4fc97f (5432)`.
    Build,
    /// The run's machine (CPU and GPUs).
    Machine,
}

impl RankBy {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RankBy::Model => "model",
            RankBy::Build => "build",
            RankBy::Machine => "machine",
        }
    }

    /// The name `e` is ranked under.
    pub fn key(self, e: &Entry) -> String {
        let unknown = |s: &str| if s.trim().is_empty() { "(unknown)".to_string() } else { s.trim().to_string() };
        match self {
            RankBy::Model => unknown(&e.record.model),
            RankBy::Machine => unknown(&e.run.meta.machine),
            RankBy::Build => {
                let commit = e.run.meta.build_commit.trim();
                // git's abbreviation, as llama.cpp's own build info prints it.
                let short: String = commit.chars().take(8).collect();
                format!("{} ({})", unknown(&short), e.run.meta.build_number)
            }
        }
    }
}

impl fmt::Display for RankBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RankBy {
    type Err = RankError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "model" => Ok(RankBy::Model),
            "build" | "commit" => Ok(RankBy::Build),
            "machine" => Ok(RankBy::Machine),
            _ => Err(RankError::By(s.to_string())),
        }
    }
}

/// One ranked model, build or machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// What is ranked: the model, the build or the machine.
    pub name: String,
    /// The mean over runs of each run's mean.
    pub mean: f64,
    /// 95% percentile-bootstrap interval of the mean: over the runs' means when there are two
    /// runs or more, else over the one run's raw samples; `None` when there is neither.
    pub ci: Option<[f64; 2]>,
    /// Runs it has records in.
    pub n_runs: usize,
    /// Records the mean is over.
    pub n_records: usize,
    /// The metric's unit.
    pub unit: String,
    /// Whether more is better (the order: best first).
    pub higher_is_better: bool,
}

#[derive(Default)]
struct Group {
    /// Run id -> the means of its records.
    runs: BTreeMap<i64, Vec<f64>>,
    samples: Vec<f64>,
    n_records: usize,
    unit: Option<String>,
}

/// The models, builds or machines of `entries` ranked by `metric`, best first (ties by name).
///
/// Only records with status `ok` that have the metric count; `pp` is bench `ts` of tests with
/// `n_gen` 0 and a prompt, `tg` of tests with `n_prompt` 0.
pub fn rankings(entries: &[Entry], metric: RankMetric, by: RankBy) -> Vec<Ranking> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for e in entries {
        let Some((mean, samples)) = metric.value(e) else { continue };
        let g = groups.entry(by.key(e)).or_default();
        g.runs.entry(e.run.id.0).or_default().push(mean);
        g.samples.extend(samples.iter().copied().filter(|s| s.is_finite()));
        g.n_records += 1;
        if g.unit.is_none() {
            g.unit = e.record.metrics.get(metric.store_metric()).map(|m| m.unit.clone()).filter(|u| !u.is_empty());
        }
    }
    let mut out: Vec<Ranking> = groups
        .into_iter()
        .map(|(name, g)| {
            let run_means: Vec<f64> = g.runs.values().map(|v| v.iter().sum::<f64>() / v.len() as f64).collect();
            let mean = run_means.iter().sum::<f64>() / run_means.len() as f64;
            // One value (a lone run with a lone sample) has no spread to resample.
            let ci = if run_means.len() >= 2 {
                bootstrap_mean_ci(&run_means, SEED)
            } else if g.samples.len() >= 2 {
                bootstrap_mean_ci(&g.samples, SEED)
            } else {
                None
            };
            Ranking {
                name,
                mean,
                ci,
                n_runs: run_means.len(),
                n_records: g.n_records,
                unit: g.unit.unwrap_or_else(|| metric.default_unit().to_string()),
                higher_is_better: metric.higher_is_better(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        let order = a.mean.total_cmp(&b.mean);
        let order = if metric.higher_is_better() { order.reverse() } else { order };
        order.then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// Every metric's rankings, in [`RankMetric::ALL`]'s order (empty where no record has it).
pub fn all_rankings(entries: &[Entry], by: RankBy) -> Vec<(RankMetric, Vec<Ranking>)> {
    RankMetric::ALL.into_iter().map(|m| (m, rankings(entries, m, by))).collect()
}

/// llm-benchmark's rankings JSON: `{"data": [{"ttft": [{"llm_name": ..., "mean_value": ...},
/// ...]}, ...]}`, one object per metric, best first; each item also has `ci_low`, `ci_high`
/// (null without an interval), `n_runs`, `n_records` and `unit`.
pub fn llm_benchmark_json(sets: &[(RankMetric, Vec<Ranking>)]) -> serde_json::Value {
    let data: Vec<serde_json::Value> = sets
        .iter()
        .map(|(metric, ranked)| {
            let items: Vec<serde_json::Value> = ranked
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "llm_name": r.name,
                        "mean_value": r.mean,
                        "ci_low": r.ci.map(|c| c[0]),
                        "ci_high": r.ci.map(|c| c[1]),
                        "n_runs": r.n_runs,
                        "n_records": r.n_records,
                        "unit": r.unit,
                    })
                })
                .collect();
            let mut obj = serde_json::Map::new();
            obj.insert(metric.name().to_string(), serde_json::Value::Array(items));
            serde_json::Value::Object(obj)
        })
        .collect();
    serde_json::json!({ "data": data })
}

/// The rankings as `benchkit rankings -o json` prints them.
pub fn to_json(metric: RankMetric, by: RankBy, ranked: &[Ranking]) -> serde_json::Value {
    serde_json::json!({
        "metric": metric.name(),
        "by": by.name(),
        "higher_is_better": metric.higher_is_better(),
        "rankings": ranked,
    })
}

/// A number with four significant digits or so: latencies in ms, throughputs, perplexities.
fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.3e}")
    }
}

/// The rankings as a markdown table, best first, with the direction said under it.
pub fn to_markdown(metric: RankMetric, by: RankBy, ranked: &[Ranking]) -> String {
    let unit = ranked.first().map_or_else(|| metric.default_unit().to_string(), |r| r.unit.clone());
    let head = if unit.is_empty() { metric.name().to_string() } else { format!("{} ({unit})", metric.name()) };
    let mut rows: Vec<[String; 6]> =
        vec![["#".into(), by.name().into(), head, "95% CI".into(), "runs".into(), "records".into()]];
    for (i, r) in ranked.iter().enumerate() {
        rows.push([
            (i + 1).to_string(),
            // A `|` in a model name would end the cell.
            r.name.replace('|', "\\|"),
            fmt_value(r.mean),
            r.ci.map_or_else(|| "-".into(), |[lo, hi]| format!("{} .. {}", fmt_value(lo), fmt_value(hi))),
            r.n_runs.to_string(),
            r.n_records.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let right = [true, false, true, true, true, true];
    let line = |r: &[String; 6]| {
        let cells: Vec<String> =
            (0..6)
                .map(|c| {
                    if right[c] {
                        format!("{:>w$}", r[c], w = widths[c])
                    } else {
                        format!("{:<w$}", r[c], w = widths[c])
                    }
                })
                .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(&rows[0]);
    let seps: Vec<String> = (0..6)
        .map(|c| if right[c] { format!("{}:", "-".repeat(widths[c])) } else { format!("{}-", "-".repeat(widths[c])) })
        .collect();
    out.push_str(&format!("|{}|\n", seps.iter().map(|s| format!("-{s}")).collect::<Vec<_>>().join("|")));
    for r in &rows[1..] {
        out.push_str(&line(r));
    }
    if ranked.is_empty() {
        out.push_str(&format!("\nno ok records with {}\n", metric.store_metric()));
    } else {
        out.push_str(&format!("\n{} is better\n", if metric.higher_is_better() { "higher" } else { "lower" }));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::store::{Metric, Run, RunId, RunMeta, StoredRecord};

    fn run(id: i64, commit: &str, build: u64, machine: &str) -> Arc<Run> {
        Arc::new(Run {
            id: RunId(id),
            stored_at: "2026-01-01T00:00:00Z".into(),
            n_records: 1,
            meta: RunMeta {
                kind: "replay".into(),
                source: "benchkit".into(),
                label: None,
                started_at: "2026-01-01T00:00:00Z".into(),
                benchkit_version: None,
                build_commit: commit.into(),
                build_number: build,
                machine: machine.into(),
                host: None,
                status: "ok".into(),
                error: None,
                provenance: serde_json::Value::Null,
            },
        })
    }

    fn entry(run: &Arc<Run>, kind: &str, model: &str, params: &[(&str, &str)], metrics: &[(&str, Metric)]) -> Entry {
        Entry {
            id: 0,
            seq: 0,
            run: run.clone(),
            record: StoredRecord {
                kind: kind.into(),
                name: "x".into(),
                model: model.into(),
                status: "ok".into(),
                error: None,
                params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
                metrics: metrics.iter().map(|(k, m)| (k.to_string(), m.clone())).collect(),
                telemetry: None,
                result: serde_json::Value::Null,
            },
        }
    }

    fn failed(mut e: Entry) -> Entry {
        e.record.status = "failed".into();
        e
    }

    fn ms(v: &[f64]) -> Metric {
        Metric::from_samples("ms", false, v.to_vec())
    }

    fn ts(v: &[f64]) -> Metric {
        Metric::from_samples("t/s", true, v.to_vec())
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for m in RankMetric::ALL {
            assert_eq!(m.to_string().parse::<RankMetric>().unwrap(), m);
        }
        assert_eq!("E2EL".parse::<RankMetric>().unwrap(), RankMetric::E2e);
        assert_eq!("e2e".parse::<RankMetric>().unwrap().store_metric(), "e2el");
        assert!(matches!("latency".parse::<RankMetric>(), Err(RankError::Metric(s)) if s == "latency"));
        assert_eq!("machine".parse::<RankBy>().unwrap(), RankBy::Machine);
        assert!("gpu".parse::<RankBy>().is_err());
    }

    #[test]
    fn latencies_rank_lowest_first_with_run_means_and_cis() {
        let (r1, r2, r3) = (run(1, "aaaa", 1, "m"), run(2, "aaaa", 1, "m"), run(3, "aaaa", 1, "m"));
        let entries = vec![
            // slow: two runs (means 100 and 120): the CI is over the run means.
            entry(&r1, "replay", "slow", &[], &[("ttft", ms(&[90.0, 110.0]))]),
            entry(&r2, "replay", "slow", &[], &[("ttft", ms(&[120.0]))]),
            // fast: one run, so its CI is over its raw samples.
            entry(&r3, "replay", "fast", &[], &[("ttft", ms(&[10.0, 20.0, 30.0]))]),
            // a failed record does not count.
            failed(entry(&r3, "replay", "broken", &[], &[("ttft", ms(&[1.0]))])),
            // nor one without the metric.
            entry(&r3, "replay", "other", &[], &[("tpot", ms(&[1.0]))]),
        ];
        let r = rankings(&entries, RankMetric::Ttft, RankBy::Model);
        assert_eq!(r.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["fast", "slow"]);
        assert_eq!((r[0].mean, r[0].n_runs, r[0].n_records), (20.0, 1, 1));
        assert_eq!((r[1].mean, r[1].n_runs, r[1].n_records), (110.0, 2, 2));
        let [lo, hi] = r[0].ci.unwrap();
        assert!((10.0..=20.0).contains(&lo) && (20.0..=30.0).contains(&hi), "{lo} {hi}");
        let [lo, hi] = r[1].ci.unwrap();
        assert!((100.0..=110.0).contains(&lo) && (110.0..=120.0).contains(&hi), "{lo} {hi}");
        assert!(!r[0].higher_is_better);
        assert_eq!(r[0].unit, "ms");
    }

    #[test]
    fn pp_and_tg_split_bench_ts_by_test_shape_and_rank_highest_first() {
        let r1 = run(1, "0123456789abcdef", 4567, "cpu A");
        let r2 = run(2, "fedcba9876543210", 4600, "cpu A");
        let pp = [("n_prompt", "512"), ("n_gen", "0")];
        let tg = [("n_prompt", "0"), ("n_gen", "128")];
        let both = [("n_prompt", "512"), ("n_gen", "128")];
        let entries = vec![
            entry(&r1, "bench", "m", &pp, &[("ts", ts(&[100.0, 102.0]))]),
            entry(&r1, "bench", "m", &tg, &[("ts", ts(&[10.0]))]),
            entry(&r1, "bench", "m", &both, &[("ts", ts(&[5000.0]))]),
            entry(&r2, "bench", "m", &pp, &[("ts", ts(&[200.0, 204.0]))]),
            entry(&r2, "bench", "m", &tg, &[("ts", ts(&[20.0]))]),
        ];
        let pp = rankings(&entries, RankMetric::Pp, RankBy::Build);
        assert_eq!(pp.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["fedcba98 (4600)", "01234567 (4567)"]);
        assert_eq!(pp.iter().map(|r| r.mean).collect::<Vec<_>>(), [202.0, 101.0]);
        let tg = rankings(&entries, RankMetric::Tg, RankBy::Build);
        assert_eq!(tg.iter().map(|r| r.mean).collect::<Vec<_>>(), [20.0, 10.0]);
        // One run with one sample: nothing to resample.
        assert_eq!(tg[0].ci, None);
        let by_machine = rankings(&entries, RankMetric::Tg, RankBy::Machine);
        assert_eq!(by_machine.len(), 1);
        assert_eq!((by_machine[0].name.as_str(), by_machine[0].mean, by_machine[0].n_runs), ("cpu A", 15.0, 2));
        assert!(by_machine[0].ci.is_some());
        assert_eq!(by_machine[0].unit, "t/s");
    }

    #[test]
    fn summary_only_metrics_rank_by_their_mean() {
        let r1 = run(1, "c", 1, "m");
        let entries = vec![
            entry(&r1, "perplexity", "q4", &[], &[("ppl", Metric::summary("", false, 12.5, Some(0.1), 100))]),
            entry(&r1, "perplexity", "q8", &[], &[("ppl", Metric::summary("", false, 11.0, Some(0.1), 100))]),
            entry(&r1, "perplexity", "nan", &[], &[("ppl", Metric::summary("", false, f64::NAN, None, 0))]),
        ];
        let r = rankings(&entries, RankMetric::Ppl, RankBy::Model);
        assert_eq!(r.iter().map(|r| (r.name.as_str(), r.mean)).collect::<Vec<_>>(), [("q8", 11.0), ("q4", 12.5)]);
        assert!(r.iter().all(|r| r.ci.is_none()));
    }

    #[test]
    fn llm_benchmark_shape_has_one_object_per_metric() {
        let r1 = run(1, "c", 1, "m");
        let entries = vec![
            entry(
                &r1,
                "replay",
                "b",
                &[],
                &[("ttft", ms(&[50.0, 70.0])), ("rps", Metric::summary("req/s", true, 2.0, None, 1))],
            ),
            entry(
                &r1,
                "replay",
                "a",
                &[],
                &[("ttft", ms(&[30.0])), ("rps", Metric::summary("req/s", true, 1.0, None, 1))],
            ),
        ];
        let sets = all_rankings(&entries, RankBy::Model);
        let v = llm_benchmark_json(&sets);
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 8);
        assert_eq!(data[0]["ttft"][0]["llm_name"], "a");
        assert_eq!(data[0]["ttft"][0]["mean_value"], 30.0);
        assert_eq!(data[0]["ttft"][0]["ci_low"], serde_json::Value::Null);
        assert_eq!(data[0]["ttft"][1]["llm_name"], "b");
        assert_eq!(data[0]["ttft"][1]["ci_low"].as_f64().map(|x| x >= 50.0), Some(true));
        assert_eq!(data[3]["rps"][0]["llm_name"], "b");
        assert_eq!(data[1]["tpot"], serde_json::json!([]));
        assert_eq!(data[7].as_object().unwrap().keys().collect::<Vec<_>>(), ["j_per_token"]);
    }

    #[test]
    fn markdown_lists_best_first_and_escapes_pipes() {
        let r = vec![
            Ranking {
                name: "a|b".into(),
                mean: 1.5,
                ci: Some([1.0, 2.0]),
                n_runs: 2,
                n_records: 3,
                unit: "ms".into(),
                higher_is_better: false,
            },
            Ranking {
                name: "c".into(),
                mean: 2500.0,
                ci: None,
                n_runs: 1,
                n_records: 1,
                unit: "ms".into(),
                higher_is_better: false,
            },
        ];
        let md = to_markdown(RankMetric::Ttft, RankBy::Model, &r);
        let lines: Vec<&str> = md.lines().collect();
        assert!(lines[0].contains("ttft (ms)") && lines[0].contains("95% CI"), "{md}");
        assert!(lines[2].contains("a\\|b") && lines[2].contains("1.000 .. 2.000"), "{md}");
        assert!(lines[3].contains("2500.0") && lines[3].contains(" - "), "{md}");
        assert!(md.ends_with("lower is better\n"));
        assert!(to_markdown(RankMetric::Pp, RankBy::Build, &[]).contains("no ok records with ts"));
    }
}
