//! Bench charts: t/s against threads and against batch size, and t/s by commit with bootstrap
//! 95% intervals of the mean.
//!
//! A series is a test (and a model, when there are several) at fixed other settings: each
//! parameter that varies among the records (other than the x axis and the prompt/generation
//! sizes the test name already says) is in the series' name. Records at the same x in one
//! series pool their samples.

use std::collections::{BTreeMap, BTreeSet};

use super::plot::{Body, Panel, Point, Series, XAxis};
use super::{mean, mean_ci, metric_values, num_param};
use crate::store::Entry;

/// Parameters the test name (`pp512`, `tg128 @ d512`) already says.
const IN_TEST_NAME: &[&str] = &["n_prompt", "n_gen", "n_depth"];

fn bench_ts(entries: &[Entry]) -> Vec<(&Entry, Vec<f64>)> {
    entries
        .iter()
        .filter(|e| e.record.kind == "bench" && e.record.status == "ok")
        .filter_map(|e| metric_values(e, "ts").map(|v| (e, v)))
        .collect()
}

/// Series names: model (when several), test (`with_test`) and the varying parameters except
/// `x_key`.
pub(super) fn series_names<'a>(
    entries: impl Iterator<Item = &'a Entry> + Clone,
    x_key: Option<&str>,
    with_test: bool,
) -> Vec<String> {
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in entries.clone() {
        for (k, v) in &e.record.params {
            values.entry(k).or_default().insert(v);
        }
    }
    let varying: Vec<&str> = values
        .iter()
        .filter(|(k, v)| v.len() > 1 && Some(**k) != x_key && !IN_TEST_NAME.contains(k))
        .map(|(k, _)| *k)
        .collect();
    let models: BTreeSet<&str> = entries.clone().map(|e| e.record.model.as_str()).collect();
    entries
        .map(|e| {
            let mut parts: Vec<String> = Vec::new();
            if models.len() > 1 {
                parts.push(format!("{} ·", e.record.model));
            }
            if with_test {
                parts.push(e.record.name.clone());
            }
            parts.extend(varying.iter().filter_map(|k| e.record.params.get(*k).map(|v| format!("{k}={v}"))));
            parts.join(" ").trim_end_matches(" ·").trim_end_matches('·').to_string()
        })
        .collect()
}

/// Mean and CI of pooled values per (series, x).
fn pooled(groups: BTreeMap<String, BTreeMap<u64, (f64, Vec<f64>)>>, seed: u64) -> Vec<Series> {
    groups
        .into_iter()
        .enumerate()
        .map(|(si, (name, xs))| {
            let pts = xs
                .into_values()
                .enumerate()
                .filter_map(|(pi, (x, v))| {
                    let y = mean(&v)?;
                    Some(Point::new(x, y, mean_ci(&v, seed ^ ((si as u64) << 20) ^ pi as u64)))
                })
                .collect();
            Series::line(name, pts)
        })
        .collect()
}

/// A test's name (none: the records of several tests together) and its records.
type TestGroup<'a, T> = (Option<String>, Vec<(&'a Entry, T)>);

/// Tests drawn in panels of their own, side by side; more tests than this share one panel.
const MAX_TEST_PANELS: usize = 3;

/// The records split by test, each test's panel titled after it, when there are few tests:
/// prompt processing and generation run an order of magnitude apart, and on one axis the
/// slower test's line lies flat at the bottom.
fn by_test<T>(recs: Vec<(&Entry, T)>) -> Vec<TestGroup<'_, T>> {
    let tests: BTreeSet<&str> = recs.iter().map(|r| r.0.record.name.as_str()).collect();
    if tests.len() > MAX_TEST_PANELS || tests.len() < 2 {
        let only = (tests.len() == 1).then(|| tests.iter().next().map(|t| t.to_string())).flatten();
        return vec![(only, recs)];
    }
    let tests: Vec<String> = tests.into_iter().map(str::to_string).collect();
    let mut out: Vec<TestGroup<'_, T>> = tests.iter().map(|t| (Some(t.clone()), Vec::new())).collect();
    for r in recs {
        if let Some(i) = tests.iter().position(|t| *t == r.0.record.name) {
            out[i].1.push(r);
        }
    }
    out
}

/// A panel's series names: without the test name when the panel is the test's.
fn panel_series_names<'a>(
    entries: impl Iterator<Item = &'a Entry> + Clone,
    x_key: Option<&str>,
    test: Option<&str>,
) -> Vec<String> {
    series_names(entries, x_key, test.is_none())
}

fn against(entries: &[Entry], seed: u64, key: &str, x: XAxis, title: &str, x_label: &str) -> Option<Vec<Panel>> {
    let recs: Vec<(&Entry, (Vec<f64>, f64))> =
        bench_ts(entries).into_iter().filter_map(|(e, v)| num_param(e, key).map(|x| (e, (v, x)))).collect();
    let distinct: BTreeSet<u64> = recs.iter().map(|r| r.1 .1.to_bits()).collect();
    if distinct.len() < 2 {
        return None;
    }
    let panels = by_test(recs)
        .into_iter()
        .map(|(test, recs)| {
            let names = panel_series_names(recs.iter().map(|r| r.0), Some(key), test.as_deref());
            let mut groups: BTreeMap<String, BTreeMap<u64, (f64, Vec<f64>)>> = BTreeMap::new();
            for ((_, (v, x)), name) in recs.into_iter().zip(names) {
                // Keyed by the value's bits: finite, parsed from the same text, so equal values agree.
                groups.entry(name).or_default().entry(x.to_bits()).or_insert((x, Vec::new())).1.extend(v);
            }
            // A setting measured at one x only (another sweep's point) is no curve: it is left
            // out where some setting has one.
            if groups.values().any(|xs| xs.len() > 1) {
                groups.retain(|_, xs| xs.len() > 1);
            }
            Panel {
                title: test.map_or_else(|| title.to_string(), |t| format!("{t}: {title}")),
                x_label: x_label.into(),
                y_label: "t/s (mean, 95% CI)".into(),
                x: x.clone(),
                y_range: None,
                body: Body::Lines(pooled(groups, seed)),
            }
        })
        .collect();
    Some(panels)
}

/// t/s against `n_threads`.
pub(super) fn threads(entries: &[Entry], seed: u64) -> Option<Vec<Panel>> {
    against(entries, seed, "n_threads", XAxis::Integer, "t/s against threads", "n_threads")
}

/// t/s against `n_batch` (log2 axis: batch sizes are powers of two apart).
pub(super) fn batch(entries: &[Entry], seed: u64) -> Option<Vec<Panel>> {
    let log = entries.iter().filter_map(|e| num_param(e, "n_batch")).all(|b| b > 0.0);
    let axis = if log { XAxis::Log2 } else { XAxis::Linear };
    against(entries, seed, "n_batch", axis, "t/s against batch size", "n_batch")
}

/// The short form of a commit: its first 7 characters.
pub(super) fn short_commit(c: &str) -> String {
    let c = c.trim();
    if c.is_empty() {
        "unknown".into()
    } else {
        c.chars().take(7).collect()
    }
}

/// Mean t/s per run with CIs, labelled by short commit. Runs are in history order: by
/// llama.cpp build number (commits' position in the history, which a commit sweep does not
/// run in order) when every run has one, else by start time.
pub(super) fn commits(entries: &[Entry], seed: u64) -> Option<Vec<Panel>> {
    let recs = bench_ts(entries);
    if recs.is_empty() {
        return None;
    }
    let by_build = recs.iter().all(|(e, _)| e.run.meta.build_number > 0);
    let mut runs: Vec<(u64, &str, i64, &str)> = recs
        .iter()
        .map(|(e, _)| {
            let m = &e.run.meta;
            (if by_build { m.build_number } else { 0 }, m.started_at.as_str(), e.run.id.0, m.build_commit.as_str())
        })
        .collect();
    runs.sort();
    runs.dedup();
    let labels: Vec<String> = runs.iter().map(|r| short_commit(r.3)).collect();
    // Two runs of one commit get their run id, so the axis tells them apart.
    let labels: Vec<String> = runs
        .iter()
        .zip(&labels)
        .map(|(r, l)| if labels.iter().filter(|x| *x == l).count() > 1 { format!("{l} #{}", r.2) } else { l.clone() })
        .collect();
    let order = if by_build { "build number" } else { "start time" };
    let panels = by_test(recs)
        .into_iter()
        .map(|(test, recs)| {
            let names = panel_series_names(recs.iter().map(|r| r.0), None, test.as_deref());
            let mut groups: BTreeMap<String, BTreeMap<u64, (f64, Vec<f64>)>> = BTreeMap::new();
            for ((e, v), name) in recs.into_iter().zip(names) {
                let Some(i) = runs.iter().position(|r| r.2 == e.run.id.0) else { continue };
                groups.entry(name).or_default().entry(i as u64).or_insert((i as f64, Vec::new())).1.extend(v);
            }
            // A setting measured in one run only (a sweep's other points) has no history: it is
            // left out where some setting has one.
            if groups.values().any(|xs| xs.len() > 1) {
                groups.retain(|_, xs| xs.len() > 1);
            }
            Panel {
                title: test.map_or_else(|| "t/s by commit".to_string(), |t| format!("{t}: t/s by commit")),
                x_label: format!("commit (runs by {order})"),
                y_label: "t/s (mean, 95% CI)".into(),
                x: XAxis::Categories(labels.clone()),
                y_range: None,
                body: Body::Lines(pooled(groups, seed)),
            }
        })
        .collect();
    Some(panels)
}
