//! Replay charts: latency CDFs (TTFT, ITL, E2EL), TTFT and ITL against the request rate, and
//! output throughput against latency.
//!
//! Latencies come from the record's raw samples when it has them (per-request values), else
//! from the result's percentiles (`percentiles_ttft_ms`: `[[p, ms], ...]`, as vLLM writes them).

use std::collections::BTreeMap;

use super::bench::series_names;
use super::plot::{Body, Panel, Point, Series, XAxis};
use super::{mean_ci, num_param};
use crate::store::Entry;

const LATENCIES: [(&str, &str); 3] = [("ttft", "TTFT"), ("itl", "ITL"), ("e2el", "E2EL")];

/// Replays that completed, and those the client's self-check flagged (`invalid`): on a machine
/// whose cores the server shares, a whole sweep can be flagged, and an empty chart would hide
/// what was measured. Flagged ones are charted as series of their own, named so.
fn replays(entries: &[Entry]) -> Vec<&Entry> {
    entries
        .iter()
        .filter(|e| e.record.kind == "replay" && matches!(e.record.status.as_str(), "ok" | "invalid"))
        .collect()
}

/// Series names of replay records: their varying parameters (`request_rate=4`), without the
/// test name every replay shares; `(invalid)` after those the client's self-check flagged.
fn names(recs: &[&Entry], x_key: Option<&str>) -> Vec<String> {
    let mut names = series_names(recs.iter().copied(), x_key, false);
    for (n, e) in names.iter_mut().zip(recs) {
        if e.record.status == "invalid" {
            *n = format!("{n} (invalid)").trim_start().to_string();
        }
    }
    names
}

/// `[[p, ms], ...]` of `metric` from the result, sorted by p.
fn percentiles(e: &Entry, metric: &str) -> Vec<(f64, f64)> {
    let key = format!("percentiles_{metric}_ms");
    let mut v: Vec<(f64, f64)> = e
        .record
        .result
        .get(&key)
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|pair| {
                    let pair = pair.as_array()?;
                    Some((pair.first()?.as_f64()?, pair.get(1)?.as_f64()?))
                })
                .filter(|(p, ms)| p.is_finite() && ms.is_finite())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The 99th percentile from the result: its percentile list, or vLLM's `p99_{metric}_ms`.
fn p99(e: &Entry, metric: &str) -> Option<f64> {
    percentiles(e, metric)
        .iter()
        .find(|(p, _)| (*p - 99.0).abs() < 1e-9)
        .map(|&(_, ms)| ms)
        .or_else(|| e.record.result.get(format!("p99_{metric}_ms"))?.as_f64())
        .filter(|ms| ms.is_finite())
}

fn samples(e: &Entry, metric: &str) -> Vec<f64> {
    let mut s: Vec<f64> = e
        .record
        .metrics
        .get(metric)
        .map(|m| m.samples.iter().copied().filter(|x| x.is_finite()).collect())
        .unwrap_or_default();
    s.sort_by(f64::total_cmp);
    s
}

/// The empirical CDF of a record's latency, at most 200 points: (ms, percent).
fn cdf(e: &Entry, metric: &str) -> Vec<Point> {
    const MAX: usize = 200;
    let s = samples(e, metric);
    if s.len() >= 2 {
        let n = s.len();
        let step = n.div_ceil(MAX);
        let mut pts: Vec<Point> =
            (0..n).step_by(step).map(|i| Point::new(s[i], 100.0 * (i + 1) as f64 / n as f64, None)).collect();
        if (n - 1) % step != 0 {
            pts.push(Point::new(s[n - 1], 100.0, None));
        }
        return pts;
    }
    percentiles(e, metric).into_iter().map(|(p, ms)| Point::new(ms, p, None)).collect()
}

/// TTFT, ITL and E2EL CDFs, a series per replay record.
pub(super) fn latency_cdf(entries: &[Entry]) -> Option<Vec<Panel>> {
    let recs = replays(entries);
    let mut labels = names(&recs, None);
    // Replays alike in every parameter (repeats, other commits) are told apart by their run.
    let dup: Vec<bool> = labels.iter().map(|l| labels.iter().filter(|x| *x == l).count() > 1).collect();
    for ((l, e), dup) in labels.iter_mut().zip(&recs).zip(dup) {
        if dup {
            *l = format!("{l} run {}", e.run.id.0).trim_start().to_string();
        }
    }
    let panels: Vec<Panel> = LATENCIES
        .iter()
        .filter_map(|(m, title)| {
            let series: Vec<Series> = recs
                .iter()
                .zip(&labels)
                .map(|(e, l)| Series::line(l.clone(), cdf(e, m)))
                .filter(|s| s.points.len() >= 2)
                .collect();
            (!series.is_empty()).then(|| Panel {
                title: format!("{title} CDF"),
                x_label: format!("{title} (ms)"),
                y_label: "percentile".into(),
                x: XAxis::Linear,
                y_range: Some((0.0, 100.0)),
                body: Body::Lines(series),
            })
        })
        .collect();
    (!panels.is_empty()).then_some(panels)
}

/// Mean TTFT and ITL against the request rate (95% CI where the record has samples) and
/// their p99 (dashed) where it has percentiles.
pub(super) fn latency_rate(entries: &[Entry], seed: u64) -> Option<Vec<Panel>> {
    let recs: Vec<&Entry> = replays(entries).into_iter().filter(|e| num_param(e, "request_rate").is_some()).collect();
    let labels = names(&recs, Some("request_rate"));
    let panels: Vec<Panel> = LATENCIES[..2]
        .iter()
        .filter_map(|(m, title)| {
            let mut means: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
            let mut p99s: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
            for (i, (e, l)) in recs.iter().zip(&labels).enumerate() {
                let Some(rate) = num_param(e, "request_rate") else { continue };
                if let Some(mean) = e.record.metrics.get(*m).and_then(|x| x.mean) {
                    let ci = mean_ci(&samples(e, m), seed ^ i as u64);
                    means.entry(l).or_default().push(Point::new(rate, mean, ci));
                }
                if let Some(ms) = p99(e, m) {
                    p99s.entry(l).or_default().push(Point::new(rate, ms, None));
                }
            }
            let join = |l: &str, stat: &str| if l.is_empty() { stat.to_string() } else { format!("{l} {stat}") };
            let mut series: Vec<Series> = Vec::new();
            for (l, pts) in means {
                series.push(Series::line(join(l, "mean"), pts));
                if let Some(p) = p99s.remove(l) {
                    let mut s = Series::line(join(l, "p99"), p);
                    s.dashed = true;
                    series.push(s);
                }
            }
            for (l, p) in p99s {
                let mut s = Series::line(join(l, "p99"), p);
                s.dashed = true;
                series.push(s);
            }
            (!series.is_empty()).then(|| Panel {
                title: format!("{title} against request rate"),
                x_label: "request rate (req/s)".into(),
                y_label: format!("{title} (ms)"),
                x: XAxis::Linear,
                y_range: None,
                body: Body::Lines(series),
            })
        })
        .collect();
    (!panels.is_empty()).then_some(panels)
}

/// Output throughput against mean E2EL (TTFT when no record has E2EL), a point per record.
pub(super) fn throughput_latency(entries: &[Entry]) -> Option<Vec<Panel>> {
    let recs: Vec<&Entry> = replays(entries)
        .into_iter()
        .filter(|e| e.record.metrics.get("output_throughput").and_then(|m| m.mean).is_some())
        .collect();
    let lat = ["e2el", "ttft"]
        .into_iter()
        .find(|m| recs.iter().any(|e| e.record.metrics.get(*m).and_then(|x| x.mean).is_some()))?;
    let labels = names(&recs, Some("request_rate"));
    let mut groups: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for (e, l) in recs.iter().zip(&labels) {
        let (Some(x), Some(y)) = (
            e.record.metrics.get(lat).and_then(|m| m.mean),
            e.record.metrics.get("output_throughput").and_then(|m| m.mean),
        ) else {
            continue;
        };
        groups.entry(l).or_default().push(Point::new(x, y, None));
    }
    let series: Vec<Series> = groups.into_iter().map(|(l, p)| Series::line(l, p)).collect();
    let name = if lat == "e2el" { "E2EL" } else { "TTFT" };
    Some(vec![Panel {
        title: format!("output throughput against mean {name}"),
        x_label: format!("mean {name} (ms)"),
        y_label: "output tok/s".into(),
        x: XAxis::Linear,
        y_range: None,
        body: Body::Lines(series),
    }])
}
