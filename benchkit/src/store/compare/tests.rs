use std::sync::Arc;

use super::*;
use crate::store::{Metric, Run, RunMeta, StoredRecord};

fn run(id: i64, commit: &str, machine: &str) -> Arc<Run> {
    Arc::new(Run {
        id: RunId(id),
        stored_at: "2026-12-05T00:00:00Z".into(),
        n_records: 0,
        meta: RunMeta {
            kind: "bench".into(),
            source: "benchkit".into(),
            label: None,
            started_at: "2026-12-05T00:00:00Z".into(),
            benchkit_version: None,
            build_commit: commit.into(),
            build_number: 1,
            machine: machine.into(),
            host: None,
            status: "ok".into(),
            error: None,
            provenance: serde_json::Value::Null,
        },
    })
}

/// Deterministic samples around `center`, spread by `spread` (no two alike, so the rank test
/// is exact).
fn samples(center: f64, spread: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| center + spread * ((i as f64 * 0.618_034).fract() - 0.5)).collect()
}

fn entry(id: i64, run: &Arc<Run>, test: &str, params: &[(&str, &str)], metric: (&str, &str, bool, Vec<f64>)) -> Entry {
    let (name, unit, hib, s) = metric;
    Entry {
        id,
        seq: id,
        run: run.clone(),
        record: StoredRecord::new(
            "bench",
            test,
            "gemma3 270M Q4_K - Medium",
            params.iter().copied(),
            [(name, Metric::from_samples(unit, hib, s))],
        ),
    }
}

fn ts(s: Vec<f64>) -> (&'static str, &'static str, bool, Vec<f64>) {
    ("ts", "t/s", true, s)
}

fn config(b: &str, c: &str) -> CompareConfig {
    CompareConfig::new(Filter::parse(b).unwrap(), Filter::parse(c).unwrap())
}

/// Runs 1 and 2 measure pp64 and tg16 at 1 and 2 threads.
fn threads_store() -> Vec<Entry> {
    let (r1, r2) = (run(1, "abc1234", "cpu"), run(2, "abc1234", "cpu"));
    vec![
        entry(1, &r1, "pp64", &[("n_threads", "1"), ("n_batch", "2048")], ts(samples(100.0, 2.0, 5))),
        entry(2, &r1, "tg16", &[("n_threads", "1"), ("n_batch", "2048")], ts(samples(20.0, 0.4, 5))),
        entry(3, &r2, "pp64", &[("n_threads", "2"), ("n_batch", "2048")], ts(samples(190.0, 3.0, 5))),
        entry(4, &r2, "tg16", &[("n_threads", "2"), ("n_batch", "2048")], ts(samples(20.1, 0.4, 5))),
    ]
}

#[test]
fn threads_one_against_two_gives_ratios_intervals_p_and_verdicts() {
    let c = compare(&threads_store(), &config("n_threads=1", "n_threads=2")).unwrap();
    assert_eq!(c.rows.len(), 2);
    assert_eq!((c.baseline_runs.clone(), c.candidate_runs.clone()), (vec![RunId(1)], vec![RunId(2)]));
    let pp = &c.rows[0];
    assert_eq!((pp.test.as_str(), pp.metric.as_str()), ("pp64", "ts"));
    assert!((pp.ratio - 1.9).abs() < 0.01, "{}", pp.ratio);
    let [lo, hi] = pp.ci.unwrap();
    assert!(lo > 1.8 && hi < 2.0 && lo < pp.ratio && pp.ratio < hi, "{lo} {hi}");
    // 5 against 5 with no overlap: the exact two-sided p is 2/252.
    assert!((pp.p.unwrap() - 2.0 / 252.0).abs() < 1e-9, "{:?}", pp.p);
    assert_eq!(pp.verdict, Verdict::Improvement);
    assert_eq!(pp.verdict.label(&pp.unit), "faster");
    let tg = &c.rows[1];
    assert_eq!(tg.verdict, Verdict::NoChange, "{tg:?}");
    assert!(tg.ci.unwrap()[0] < 1.0 && tg.ci.unwrap()[1] > 1.0);
    // Selected on n_threads: not a column; n_batch is the same everywhere.
    assert!(c.columns.is_empty(), "{:?}", c.columns);
    assert_eq!(c.common.get("n_batch").map(String::as_str), Some("2048"));
    assert!(!c.has_regression() && c.has_change());
}

#[test]
fn a_real_but_small_change_is_below_the_threshold() {
    let (r1, r2) = (run(1, "aaaa111", "cpu"), run(2, "bbbb222", "cpu"));
    let e = vec![
        entry(1, &r1, "pp64", &[], ts(samples(100.0, 0.1, 8))),
        entry(2, &r2, "pp64", &[], ts(samples(99.0, 0.1, 8))),
    ];
    let mut cfg = config("commit=aaaa111", "commit=bbbb222");
    let c = compare(&e, &cfg).unwrap();
    let r = &c.rows[0];
    assert!(r.ci.unwrap()[1] < 1.0 && r.p.unwrap() < 0.01);
    assert_eq!(r.verdict, Verdict::NoChange, "1% is inside the 2% noise threshold");
    cfg.threshold = 0.005;
    let r = compare(&e, &cfg).unwrap().rows.remove(0);
    assert_eq!((r.verdict, r.verdict.label(&r.unit)), (Verdict::Regression, "slower"));
}

#[test]
fn lower_is_better_metrics_and_single_values() {
    let (r1, r2) = (run(1, "aaaa111", "cpu"), run(2, "bbbb222", "cpu"));
    let ttft = |s| ("ttft", "ms", false, s);
    let ppl = |x| ("ppl", "ppl", false, vec![x]);
    let mut e = vec![
        entry(1, &r1, "replay", &[("request_rate", "4")], ttft(samples(50.0, 1.0, 20))),
        entry(2, &r2, "replay", &[("request_rate", "4")], ttft(samples(40.0, 1.0, 20))),
        entry(3, &r1, "ppl", &[], ppl(20.0)),
        entry(4, &r2, "ppl", &[], ppl(21.0)),
    ];
    for (x, kind) in e.iter_mut().zip(["replay", "replay", "perplexity", "perplexity"]) {
        x.record.kind = kind.into();
    }
    let c = compare(&e, &config("commit=aaaa", "commit=bbbb")).unwrap();
    let ppl = c.rows.iter().find(|r| r.metric == "ppl").unwrap();
    assert_eq!((ppl.verdict, ppl.ci, ppl.p), (Verdict::Inconclusive, None, None));
    assert!((ppl.ratio - 1.05).abs() < 1e-12);
    let t = c.rows.iter().find(|r| r.metric == "ttft").unwrap();
    assert_eq!((t.verdict, t.verdict.label("ms")), (Verdict::Improvement, "faster"));
    // request_rate is a replay parameter: perplexity rows lacking it do not stop the join.
    assert!(c.ignored.is_empty(), "{:?}", c.ignored);
    assert_eq!(t.key.get("request_rate"), None, "the same in every row: not a column");
    assert_eq!(c.common.get("request_rate").map(String::as_str), Some("4"));
}

#[test]
fn repeated_runs_pool_and_only_differing_columns_show() {
    let (r1, r2, r3) = (run(1, "aaaa111", "cpu"), run(2, "aaaa111", "cpu"), run(3, "bbbb222", "cpu"));
    let e = vec![
        entry(1, &r1, "pp64", &[("n_threads", "1")], ts(samples(100.0, 2.0, 3))),
        entry(2, &r2, "pp64", &[("n_threads", "1")], ts(samples(101.0, 2.0, 3))),
        entry(3, &r1, "pp64", &[("n_threads", "2")], ts(samples(180.0, 2.0, 5))),
        entry(4, &r3, "pp64", &[("n_threads", "1")], ts(samples(100.0, 2.0, 3))),
        entry(5, &r3, "pp64", &[("n_threads", "2")], ts(samples(150.0, 2.0, 5))),
    ];
    let c = compare(&e, &config("commit=aaaa111", "commit=bbbb222")).unwrap();
    assert_eq!(c.columns, ["n_threads"]);
    // 6 pooled against 3 that overlap: no change; 5 against 5 apart: a regression (3 against 3
    // could not be: the exact test's smallest two-sided p is then 0.1).
    assert_eq!(c.baseline_runs, [RunId(1), RunId(2)]);
    let one = &c.rows[0];
    assert_eq!((one.key["n_threads"].as_str(), one.baseline.n, one.baseline.records.clone()), ("1", 6, vec![1, 2]));
    let two = &c.rows[1];
    assert_eq!(two.verdict, Verdict::Regression);
    let md = to_markdown(&c);
    assert!(
        md.contains("| model | test | n_threads | metric | baseline | candidate | ratio | 95% CI | p | verdict |"),
        "{md}"
    );
    assert!(md.contains("| --- | --- | --- | --- | ---: | ---: | ---: | --- | ---: | --- |"), "{md}");
    assert!(md.contains("| slower |"), "{md}");
    let csv = to_csv(&c);
    assert!(csv.starts_with("kind,model,test,n_threads,metric,unit,baseline_mean,"), "{csv}");
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.lines().nth(2).unwrap().ends_with(",regression"));
}

#[test]
fn machines_join_unless_selected() {
    let (r1, r2) = (run(1, "aaaa111", "epyc"), run(2, "bbbb222", "xeon"));
    let e = vec![
        entry(1, &r1, "pp64", &[], ts(samples(100.0, 2.0, 5))),
        entry(2, &r2, "pp64", &[], ts(samples(90.0, 2.0, 5))),
    ];
    let err = compare(&e, &config("commit=aaaa", "commit=bbbb")).unwrap_err();
    assert!(matches!(&err, CompareError::NoJoin { differ, .. } if differ == "machine"), "{err}");
    let c = compare(&e, &config("machine=epyc", "machine=xeon")).unwrap();
    assert_eq!(c.rows.len(), 1);
}

#[test]
fn a_side_without_records_is_an_error() {
    let err = compare(&threads_store(), &config("n_threads=1", "n_threads=8")).unwrap_err();
    assert!(matches!(&err, CompareError::Empty { side: "candidate", filter } if filter == "n_threads=8"), "{err}");
}
