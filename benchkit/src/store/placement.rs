//! Placement comparisons as store records: one record per arm and workload metric (a bench
//! test, a replay throughput), whose metric holds the arm's per-round samples, so a stored
//! placement run compares, ranks and charts like any other result.

use std::collections::BTreeMap;

use super::{Metric, StoredRecord};
use crate::placement::{ArmSummary, PlacementReport};

/// The store's metric name and unit for a placement metric. Bench, perplexity and KL
/// workloads measure tokens per second (`ts`, as bench records name it); replay workloads
/// measure output tokens and requests per second (the names replay records use).
fn metric_name(metric: &str, unit: &str) -> (&'static str, String) {
    match metric {
        "output tok/s" => ("output_throughput", "tok/s".into()),
        "req/s" => ("rps", "req/s".into()),
        _ => ("ts", if unit.is_empty() { "t/s".into() } else { unit.to_string() }),
    }
}

/// What the arm asked for, as text parameters: what the report and comparisons join on.
fn requested_params(a: &ArmSummary, p: &mut BTreeMap<String, String>) {
    let r = &a.requested;
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            p.insert(k.into(), v);
        }
    };
    put("cpus", r.cpus_list());
    put("strict", r.strict.then(|| "1".to_string()));
    put("policy", r.policy.map(|x| x.to_string()));
    put("nice", r.nice.map(|n| n.to_string()));
    put("mempolicy", r.mem.as_ref().map(|m| m.numa_maps_name()));
    put("scheduler", r.scheduler.clone());
    put("partial", r.partial.then(|| "1".to_string()));
}

/// One record per arm of a placement report (per arm and metric when the workload has
/// several), in the report's order. The record's name is the workload's test (`pp512`,
/// `perplexity`, `output tok/s`); its parameters are the arm's name, the baseline's and what
/// the arm asked (`cpus`, `policy`, `mempolicy`, `scheduler`, ...); its metric carries the
/// valid rounds' samples (higher is better). An arm whose verification failed is stored with
/// status `invalid` and the reason, so that comparisons leave it out.
pub fn placement_records(report: &PlacementReport) -> Vec<StoredRecord> {
    let model = report.provenance.model.as_ref().map(|m| m.info.description.clone()).unwrap_or_default();
    report
        .arms
        .iter()
        .map(|a| {
            let mut params = BTreeMap::new();
            params.insert("arm".to_string(), a.name.clone());
            params.insert("baseline".to_string(), report.baseline.clone());
            params.insert("rounds".to_string(), report.rounds.to_string());
            requested_params(a, &mut params);
            let (name, unit) = metric_name(&a.metric, &a.unit);
            let mut metrics = BTreeMap::new();
            if !a.samples.is_empty() {
                metrics.insert(name.to_string(), Metric::from_samples(&unit, true, a.samples.clone()));
            }
            StoredRecord {
                kind: "placement".into(),
                name: a.metric.clone(),
                model: model.clone(),
                status: if a.valid { "ok" } else { "invalid" }.into(),
                error: if a.valid { None } else { Some(a.invalid_reason.clone().unwrap_or_else(|| "invalid".into())) },
                params,
                metrics,
                telemetry: None,
                result: serde_json::to_value(a).unwrap_or(serde_json::Value::Null),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{ObservedSummary, Requested};

    fn arm(name: &str, valid: bool, samples: Vec<f64>) -> ArmSummary {
        ArmSummary {
            name: name.into(),
            metric: "pp512".into(),
            unit: "t/s".into(),
            requested: Requested { cpus: Some(vec![0, 1]), strict: true, ..Requested::default() },
            observed: ObservedSummary::default(),
            valid,
            invalid_reason: (!valid).then(|| "cpus_allowed was 0-3, asked 0-1 (2/2 trials)".to_string()),
            trials: 2,
            valid_trials: if valid { 2 } else { 0 },
            samples,
            median: None,
            ci95: None,
            ratio_vs_baseline: None,
            ratio_ci95: None,
            p_value: None,
        }
    }

    #[test]
    fn one_record_per_arm_with_its_request_samples_and_validity() {
        let report = PlacementReport {
            provenance: crate::Provenance::now(),
            baseline: "default".into(),
            rounds: 2,
            seed: 1,
            order: vec![],
            arms: vec![arm("default", true, vec![100.0, 102.0]), arm("pinned", false, vec![])],
            trials: vec![],
        };
        let recs = placement_records(&report);
        assert_eq!(recs.len(), 2);
        let r = &recs[0];
        assert_eq!((r.kind.as_str(), r.name.as_str(), r.status.as_str()), ("placement", "pp512", "ok"));
        assert_eq!(r.params["arm"], "default");
        assert_eq!(r.params["baseline"], "default");
        assert_eq!(r.params["cpus"], "0-1");
        assert_eq!(r.params["strict"], "1");
        let m = &r.metrics["ts"];
        assert_eq!((m.unit.as_str(), m.higher_is_better, m.n, m.mean), ("t/s", true, 2, Some(101.0)));
        assert_eq!(m.samples, [100.0, 102.0]);
        assert_eq!(recs[1].status, "invalid");
        assert!(recs[1].error.as_deref().unwrap().contains("cpus_allowed"));
        assert!(recs[1].metrics.is_empty());
    }

    #[test]
    fn replay_metrics_take_the_replay_record_names() {
        assert_eq!(metric_name("output tok/s", ""), ("output_throughput", "tok/s".to_string()));
        assert_eq!(metric_name("req/s", ""), ("rps", "req/s".to_string()));
        assert_eq!(metric_name("perplexity", "t/s"), ("ts", "t/s".to_string()));
    }
}
