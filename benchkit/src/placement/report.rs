//! A comparison's results: every trial with what was asked and observed, and per arm and
//! metric the samples, median, bootstrap interval and the comparison with the baseline.
//! JSON is the serde form of [`PlacementReport`]; [`PlacementReport::markdown`] is the table.

use super::observe::Observation;
use super::scx::{DetachReport, ScxSnapshot};
use super::spec::{Arm, Requested};
use crate::stats::{bootstrap_median_ci, bootstrap_ratio_ci, mann_whitney_p, median};
use crate::Provenance;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One trial: an arm's round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialResult {
    /// The arm.
    pub arm: String,
    /// 0-based round.
    pub round: u32,
    /// Its place in the run's order.
    pub position: usize,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Whether every claim held and the workload succeeded.
    pub valid: bool,
    /// Why not, one sentence each.
    pub invalid_reasons: Vec<String>,
    /// What could not be checked on this machine.
    pub unverified: BTreeSet<String>,
    /// The arm's placement, explicit.
    pub requested: Requested,
    /// Every observation of the worker, one per workload trial (bench test).
    pub observed: Vec<Observation>,
    /// Metric name -> value (bench: test -> t/s).
    pub samples: BTreeMap<String, f64>,
    /// sched_ext before the workload (after the attach, for a scheduler arm).
    pub sched_ext_before: Option<ScxSnapshot>,
    /// sched_ext at the workload's end, before any detach.
    pub sched_ext_after: Option<ScxSnapshot>,
    /// The scheduler's process.
    pub scheduler_pid: Option<u32>,
    /// How the scheduler was detached.
    pub detach: Option<DetachReport>,
}

impl TrialResult {
    pub(crate) fn new(arm: &Arm, round: u32, position: usize, requested: &Requested) -> Self {
        TrialResult {
            arm: arm.name.clone(),
            round,
            position,
            started_at: crate::provenance::rfc3339_now(),
            valid: true,
            invalid_reasons: Vec::new(),
            unverified: BTreeSet::new(),
            requested: requested.clone(),
            observed: Vec::new(),
            samples: BTreeMap::new(),
            sched_ext_before: None,
            sched_ext_after: None,
            scheduler_pid: None,
            detach: None,
        }
    }

    pub(crate) fn invalid(&mut self, why: String) {
        self.valid = false;
        if !self.invalid_reasons.contains(&why) {
            self.invalid_reasons.push(why);
        }
    }
}

/// An arm's observed placement, condensed over its trials' observations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObservedSummary {
    /// Distinct `Cpus_allowed_list` values of the worker's threads.
    pub cpus_allowed: Vec<String>,
    /// Distinct policies of its threads.
    pub policy: Vec<String>,
    /// Distinct nice values.
    pub nice: Vec<i32>,
    /// Distinct memory policies of its anonymous memory, as numa_maps names them.
    pub mem_policy: Vec<String>,
    /// Anonymous pages per node (the first observation).
    pub pages_per_node: BTreeMap<u32, u64>,
    /// Distinct `ext.enabled` values (empty: the kernel shows none).
    pub ext_enabled: Vec<bool>,
    /// sched_ext `state`, `ops` and `enable_seq` before the workload (first trial).
    pub sched_ext_before: Option<ScxSnapshot>,
    /// The same at its end.
    pub sched_ext_after: Option<ScxSnapshot>,
}

impl ObservedSummary {
    fn of<'a>(trials: impl Iterator<Item = &'a TrialResult> + Clone) -> Self {
        let mut s = ObservedSummary::default();
        let obs = trials.clone().flat_map(|t| t.observed.iter());
        let mut cpus = BTreeSet::new();
        let mut policy = BTreeSet::new();
        let mut nice = BTreeSet::new();
        let mut mem = BTreeSet::new();
        let mut ext = BTreeSet::new();
        for o in obs {
            for t in &o.threads {
                cpus.insert(t.cpus_allowed.clone());
                policy.insert(t.policy.clone());
                nice.insert(t.nice);
                ext.extend(t.ext_enabled);
            }
            mem.extend(o.memory.pages_per_policy.keys().cloned());
            if s.pages_per_node.is_empty() {
                s.pages_per_node = o.memory.pages_per_node.clone();
            }
        }
        let first = trials.clone().find(|t| t.sched_ext_before.is_some());
        s.sched_ext_before = first.and_then(|t| t.sched_ext_before.clone());
        s.sched_ext_after = first.and_then(|t| t.sched_ext_after.clone());
        s.cpus_allowed = cpus.into_iter().collect();
        s.policy = policy.into_iter().collect();
        s.nice = nice.into_iter().collect();
        s.mem_policy = mem.into_iter().collect();
        s.ext_enabled = ext.into_iter().collect();
        s
    }
}

/// One arm on one metric, against the baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmSummary {
    /// The arm.
    pub name: String,
    /// The metric (bench: the test, `pp512`).
    pub metric: String,
    /// Its unit; higher is better.
    pub unit: String,
    /// The arm's placement, explicit.
    pub requested: Requested,
    /// What its trials showed.
    pub observed: ObservedSummary,
    /// Every trial valid.
    pub valid: bool,
    /// Why not: each distinct reason with the trials it hit.
    pub invalid_reason: Option<String>,
    /// Trials run.
    pub trials: u32,
    /// Valid trials, whose samples count.
    pub valid_trials: u32,
    /// The valid trials' values, in run order.
    pub samples: Vec<f64>,
    /// Their median.
    pub median: Option<f64>,
    /// Percentile-bootstrap 95% interval of the median.
    pub ci95: Option<[f64; 2]>,
    /// median / baseline's median.
    pub ratio_vs_baseline: Option<f64>,
    /// Its bootstrap 95% interval.
    pub ratio_ci95: Option<[f64; 2]>,
    /// Two-sided Mann-Whitney U p-value against the baseline's samples.
    pub p_value: Option<f64>,
}

/// A whole comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlacementReport {
    /// Build, machine (topology included), arms, workload, seeds.
    pub provenance: Provenance,
    /// The baseline arm.
    pub baseline: String,
    /// Rounds.
    pub rounds: u32,
    /// The order's seed.
    pub seed: u64,
    /// The run order, `arm#round`.
    pub order: Vec<String>,
    /// Per arm and metric, arms in the given order.
    pub arms: Vec<ArmSummary>,
    /// Every trial, in run order.
    pub trials: Vec<TrialResult>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn summarise(
    provenance: Provenance,
    arms: &[Arm],
    requested: &[Requested],
    baseline: usize,
    rounds: u32,
    seed: u64,
    order: Vec<String>,
    trials: Vec<TrialResult>,
    unit: &str,
    expected: &[&str],
) -> PlacementReport {
    // Known metrics come first, so that they are reported even when no trial produced them.
    let mut metrics: Vec<String> = expected.iter().map(|m| m.to_string()).collect();
    for t in &trials {
        for m in t.samples.keys() {
            if !metrics.contains(m) {
                metrics.push(m.clone());
            }
        }
    }
    if metrics.is_empty() {
        metrics.push(unit.into());
    }
    let samples = |arm: &str, metric: &str| -> Vec<f64> {
        trials.iter().filter(|t| t.arm == arm && t.valid).filter_map(|t| t.samples.get(metric).copied()).collect()
    };
    let mut out = Vec::new();
    for (mi, metric) in metrics.iter().enumerate() {
        let base = samples(&arms[baseline].name, metric);
        for (ai, arm) in arms.iter().enumerate() {
            let mine: Vec<&TrialResult> = trials.iter().filter(|t| t.arm == arm.name).collect();
            let s = samples(&arm.name, metric);
            let valid_trials = mine.iter().filter(|t| t.valid).count() as u32;
            let mut reasons: Vec<(String, u32)> = Vec::new();
            for r in mine.iter().flat_map(|t| t.invalid_reasons.iter()) {
                match reasons.iter_mut().find(|(x, _)| x == r) {
                    Some((_, n)) => *n += 1,
                    None => reasons.push((r.clone(), 1)),
                }
            }
            let n = mine.len();
            let invalid_reason = (!reasons.is_empty())
                .then(|| reasons.iter().map(|(r, k)| format!("{r} ({k}/{n} trials)")).collect::<Vec<_>>().join("; "));
            let stat_seed = seed ^ ((mi as u64) << 32) ^ ai as u64;
            let is_base = ai == baseline;
            let (m, bm) = (median(&s), median(&base));
            out.push(ArmSummary {
                name: arm.name.clone(),
                metric: metric.clone(),
                unit: unit.into(),
                requested: requested[ai].clone(),
                observed: ObservedSummary::of(mine.iter().copied()),
                valid: reasons.is_empty() && !s.is_empty(),
                invalid_reason: invalid_reason.or_else(|| s.is_empty().then(|| "no sample".to_string())),
                trials: n as u32,
                valid_trials,
                ci95: bootstrap_median_ci(&s, stat_seed),
                median: m,
                ratio_vs_baseline: m.zip(bm).map(|(a, b)| a / b),
                ratio_ci95: if is_base { None } else { bootstrap_ratio_ci(&s, &base, stat_seed.rotate_left(17)) },
                p_value: if is_base { None } else { mann_whitney_p(&s, &base) },
                samples: s,
            });
        }
    }
    PlacementReport { provenance, baseline: arms[baseline].name.clone(), rounds, seed, order, arms: out, trials }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn interval(v: Option<[f64; 2]>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |[a, b]| format!("{a:.digits$} - {b:.digits$}"))
}

impl PlacementReport {
    /// The comparison as a markdown table, then each invalid arm's reason.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| arm | test | valid | n | median{} | 95% CI | ratio vs {} | ratio 95% CI | p (Mann-Whitney) |",
            self.arms.first().filter(|a| !a.unit.is_empty()).map_or(String::new(), |a| format!(" {}", a.unit)),
            self.baseline
        );
        let _ = writeln!(s, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for a in &self.arms {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                a.name,
                a.metric,
                if a.valid { "yes" } else { "**no**" },
                a.samples.len(),
                num(a.median, 2),
                interval(a.ci95, 2),
                num(a.ratio_vs_baseline, 3),
                interval(a.ratio_ci95, 3),
                num(a.p_value, 3),
            );
        }
        let mut seen = BTreeSet::new();
        for a in self.arms.iter().filter(|a| !a.valid) {
            if seen.insert(&a.name) {
                let _ = writeln!(s, "\n{} invalid: {}", a.name, a.invalid_reason.as_deref().unwrap_or(""));
            }
        }
        let unverified: BTreeSet<&String> = self.trials.iter().flat_map(|t| t.unverified.iter()).collect();
        for u in unverified {
            let _ = writeln!(s, "\nnot verifiable here: {u}");
        }
        s
    }
}
