//! Bar charts: placement arms (median of the rounds, bootstrap 95% interval of the median, as
//! the placement report computes them) and energy per token (mean, bootstrap 95% interval of
//! the mean where there are several values).

use std::collections::BTreeMap;

use super::plot::{Body, Panel, XAxis};
use super::{mean, mean_ci, metric_values};
use crate::stats::{bootstrap_median_ci, median};
use crate::store::Entry;

/// Placement metrics in the order they are charted (bench, then replay's throughputs).
const PLACEMENT_METRICS: [&str; 3] = ["ts", "output_throughput", "rps"];

/// A panel of bars per placement metric; a bar per (test, arm), coloured by arm.
pub(super) fn placement(entries: &[Entry], seed: u64) -> Option<Vec<Panel>> {
    let recs: Vec<&Entry> = entries.iter().filter(|e| e.record.kind == "placement").collect();
    let many_runs = recs.iter().map(|e| e.run.id).collect::<std::collections::BTreeSet<_>>().len() > 1;
    let panels: Vec<Panel> = PLACEMENT_METRICS
        .iter()
        .filter_map(|metric| {
            let mine: Vec<(&Entry, Vec<f64>)> =
                recs.iter().filter_map(|e| metric_values(e, metric).map(|v| (*e, v))).collect();
            if mine.is_empty() {
                return None;
            }
            let unit = mine[0].0.record.metrics[*metric].unit.clone();
            let tests: std::collections::BTreeSet<&str> = mine.iter().map(|(e, _)| e.record.name.as_str()).collect();
            let mut arms: Vec<String> = Vec::new();
            let (mut labels, mut bars) = (Vec::new(), Vec::new());
            for (i, (e, v)) in mine.iter().enumerate() {
                let arm = e.record.params.get("arm").cloned().unwrap_or_else(|| "?".into());
                let colour = arms.iter().position(|a| *a == arm).unwrap_or_else(|| {
                    arms.push(arm.clone());
                    arms.len() - 1
                });
                let mut label = if tests.len() > 1 { format!("{} {arm}", e.record.name) } else { arm };
                if many_runs {
                    label.push_str(&format!(" #{}", e.run.id.0));
                }
                if e.record.status != "ok" {
                    label.push_str(" (invalid)");
                }
                let Some(m) = median(v) else { continue };
                labels.push(label);
                bars.push((
                    labels.len() - 1,
                    m,
                    bootstrap_median_ci(v, seed ^ i as u64).filter(|_| v.len() > 1),
                    colour,
                ));
            }
            // Bars labelled by their arm alone need no legend of arms.
            if tests.len() == 1 && !many_runs {
                arms.iter_mut().for_each(String::clear);
            }
            let test = if tests.len() == 1 {
                tests.iter().next().map_or(String::new(), |t| format!(" ({t})"))
            } else {
                String::new()
            };
            Some(Panel {
                title: format!("{metric} by placement arm{test}"),
                x_label: "arm".into(),
                y_label: format!("{unit} (median, 95% CI)"),
                x: XAxis::Categories(labels),
                y_range: None,
                body: Body::Bars { bars, legend: arms },
            })
        })
        .collect();
    (!panels.is_empty()).then_some(panels)
}

/// J/token per test (and model, when several), coloured by record kind.
pub(super) fn energy(entries: &[Entry], seed: u64) -> Option<Vec<Panel>> {
    let recs: Vec<(&Entry, Vec<f64>)> = entries
        .iter()
        .filter(|e| e.record.status == "ok")
        .filter_map(|e| metric_values(e, "j_per_token").map(|v| (e, v)))
        .collect();
    if recs.is_empty() {
        return None;
    }
    let models: std::collections::BTreeSet<&str> = recs.iter().map(|(e, _)| e.record.model.as_str()).collect();
    let mut groups: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for (e, v) in &recs {
        let mut label = e.record.name.clone();
        if models.len() > 1 {
            label = format!("{} · {label}", e.record.model);
        }
        groups.entry((e.record.kind.clone(), label)).or_default().extend(v);
    }
    let mut kinds: Vec<String> = Vec::new();
    let (mut labels, mut bars) = (Vec::new(), Vec::new());
    for (i, ((kind, label), v)) in groups.into_iter().enumerate() {
        let colour = kinds.iter().position(|k| *k == kind).unwrap_or_else(|| {
            kinds.push(kind.clone());
            kinds.len() - 1
        });
        let Some(m) = mean(&v) else { continue };
        labels.push(label);
        bars.push((labels.len() - 1, m, mean_ci(&v, seed ^ i as u64), colour));
    }
    Some(vec![Panel {
        title: "energy per token".into(),
        x_label: "test".into(),
        y_label: "J/token (mean, 95% CI)".into(),
        x: XAxis::Categories(labels),
        y_range: None,
        body: Body::Bars { bars, legend: kinds },
    }])
}
