//! A server's Prometheus `/metrics`, scraped during a run: counters as deltas over the run,
//! gauges as series.
//!
//! Names are kept as the server writes them (`llamacpp:tokens_predicted_total`,
//! `vllm:num_requests_running{model_name="..."}`), so a script finds them by the server's own
//! documentation. Histogram and summary parts (`_bucket`, `_sum`, `_count`) are counters.
//! A scrape that fails and a line that does not parse are recorded, never fatal.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A metric family's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// One parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Series (name with its labels) -> value.
    pub values: BTreeMap<String, f64>,
    /// Series -> the series is a counter.
    counters: BTreeMap<String, bool>,
    /// Lines that did not parse.
    pub malformed: Vec<String>,
}

impl Exposition {
    /// Parses the text format. Malformed lines are kept in [`Exposition::malformed`]; the
    /// others are read.
    pub fn parse(text: &str) -> Exposition {
        let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
        let mut e = Exposition::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                let mut w = rest.split_whitespace();
                if w.next() == Some("TYPE") {
                    if let (Some(name), Some(kind)) = (w.next(), w.next()) {
                        let kind = match kind {
                            "counter" => Kind::Counter,
                            "gauge" => Kind::Gauge,
                            "histogram" => Kind::Histogram,
                            "summary" => Kind::Summary,
                            _ => Kind::Untyped,
                        };
                        kinds.insert(name.to_string(), kind);
                    }
                }
                continue;
            }
            match parse_sample(line) {
                Some((name, key, value)) => {
                    if name.ends_with("_created") {
                        continue; // a timestamp, not a measurement
                    }
                    let counter = match family_kind(&kinds, name) {
                        Some(Kind::Counter | Kind::Histogram | Kind::Summary) => {
                            // A summary's quantiles are gauges; its _sum and _count count.
                            !(key.contains("quantile=") && !name.ends_with("_sum") && !name.ends_with("_count"))
                        }
                        Some(Kind::Gauge) => false,
                        Some(Kind::Untyped) | None => name.ends_with("_total"),
                    };
                    e.counters.insert(key.clone(), counter);
                    e.values.insert(key, value);
                }
                None => e.malformed.push(line.chars().take(200).collect()),
            }
        }
        e
    }

    /// Whether series `key` is a counter.
    pub fn is_counter(&self, key: &str) -> bool {
        self.counters.get(key).copied().unwrap_or(false)
    }
}

fn family_kind(kinds: &BTreeMap<String, Kind>, name: &str) -> Option<Kind> {
    kinds.get(name).copied().or_else(|| {
        ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).and_then(|base| kinds.get(base).copied()))
    })
}

/// `name{labels} value [timestamp]` -> (name, series key, value).
fn parse_sample(line: &str) -> Option<(&str, String, f64)> {
    let (key, rest) = match line.find('{') {
        Some(open) => {
            let close = open + closing_brace(&line[open..])?;
            let labels: String = line[open..=close].to_string();
            (format!("{}{labels}", &line[..open]), &line[close + 1..])
        }
        None => {
            let end = line.find(char::is_whitespace)?;
            (line[..end].to_string(), &line[end..])
        }
    };
    let name_len = key.find('{').unwrap_or(key.len());
    let name = &line[..name_len];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return None;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().ok()?,
    };
    Some((name, key, value))
}

/// Offset of the `}` closing the label set at the start of `s`, skipping quoted values.
fn closing_brace(s: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// A scrape that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrapeFailure {
    /// Seconds since the run started.
    pub t_s: f64,
    /// What went wrong (connection, HTTP status and body excerpt).
    pub error: String,
}

/// A gauge over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaugeSeries {
    /// Mean of the scrapes.
    pub mean: f64,
    /// Least.
    pub min: f64,
    /// Most.
    pub max: f64,
    /// At the last scrape.
    pub last: f64,
    /// `(seconds since the run started, value)` per scrape.
    pub points: Vec<(f64, f64)>,
}

/// The server's side of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMetrics {
    /// Where they were scraped.
    pub url: String,
    /// Scrapes that answered.
    pub scrapes: usize,
    /// Scrapes that did not.
    pub failures: Vec<ScrapeFailure>,
    /// Counter increase over the run, per series (a reset counts from zero, as Prometheus'
    /// `increase`); only series seen in at least two scrapes.
    pub counters: BTreeMap<String, f64>,
    /// Gauges, per series.
    pub gauges: BTreeMap<String, GaugeSeries>,
    /// Lines that did not parse (the first few).
    pub malformed_lines: Vec<String>,
}

impl ServerMetrics {
    /// A counter's increase, by its series name.
    pub fn counter(&self, key: &str) -> Option<f64> {
        self.counters.get(key).copied()
    }
}

/// Scrapes, in order, reduced to [`ServerMetrics`] at the end.
#[derive(Debug, Default)]
pub struct Scrapes {
    ok: Vec<(f64, Exposition)>,
    failures: Vec<ScrapeFailure>,
}

impl Scrapes {
    /// One scrape at `t_s`: the body, or why there is none.
    pub fn push(&mut self, t_s: f64, body: Result<String, String>) {
        match body {
            Ok(text) => self.ok.push((t_s, Exposition::parse(&text))),
            Err(error) => self.failures.push(ScrapeFailure { t_s, error }),
        }
    }

    /// The run's metrics.
    pub fn finish(self, url: &str) -> ServerMetrics {
        let mut counters: BTreeMap<String, (f64, f64, usize)> = BTreeMap::new(); // (last, increase, seen)
        let mut gauges: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let mut malformed = Vec::new();
        for (t, e) in &self.ok {
            for (key, &v) in &e.values {
                if e.is_counter(key) {
                    let c = counters.entry(key.clone()).or_insert((v, 0.0, 0));
                    if c.2 > 0 {
                        c.1 += if v >= c.0 { v - c.0 } else { v };
                    }
                    (c.0, c.2) = (v, c.2 + 1);
                } else {
                    gauges.entry(key.clone()).or_default().push((*t, v));
                }
            }
            for m in &e.malformed {
                if malformed.len() < 10 && !malformed.contains(m) {
                    malformed.push(m.clone());
                }
            }
        }
        let gauges = gauges
            .into_iter()
            .map(|(k, points)| {
                let vals = points.iter().map(|p| p.1);
                let n = points.len() as f64;
                let g = GaugeSeries {
                    mean: vals.clone().sum::<f64>() / n,
                    min: vals.clone().fold(f64::INFINITY, f64::min),
                    max: vals.fold(f64::NEG_INFINITY, f64::max),
                    last: points.last().map_or(f64::NAN, |p| p.1),
                    points,
                };
                (k, g)
            })
            .collect();
        ServerMetrics {
            url: url.to_string(),
            scrapes: self.ok.len(),
            failures: self.failures,
            counters: counters.into_iter().filter(|(_, c)| c.2 >= 2).map(|(k, c)| (k, c.1)).collect(),
            gauges,
            malformed_lines: malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LLAMA: &str = "# HELP llamacpp:tokens_predicted_total Number of generation tokens processed\n\
        # TYPE llamacpp:tokens_predicted_total counter\n\
        llamacpp:tokens_predicted_total 100\n\
        # TYPE llamacpp:requests_processing gauge\n\
        llamacpp:requests_processing 0\n";

    #[test]
    fn counters_are_deltas_and_gauges_series() {
        let mut s = Scrapes::default();
        s.push(0.0, Ok(LLAMA.into()));
        s.push(1.0, Ok(LLAMA.replace(" 100\n", " 160\n").replace("processing 0", "processing 4")));
        s.push(1.5, Err("HTTP 500: boom".into()));
        s.push(2.0, Ok(LLAMA.replace(" 100\n", " 250\n").replace("processing 0", "processing 2")));
        let m = s.finish("http://127.0.0.1:1/metrics");
        assert_eq!(m.counter("llamacpp:tokens_predicted_total"), Some(150.0));
        let g = &m.gauges["llamacpp:requests_processing"];
        assert_eq!((g.min, g.max, g.last, g.mean), (0.0, 4.0, 2.0, 2.0));
        assert_eq!(g.points.len(), 3);
        assert_eq!((m.scrapes, m.failures.len()), (3, 1));
        assert_eq!(m.failures[0].error, "HTTP 500: boom");
    }

    #[test]
    fn vllm_labels_histograms_resets_and_a_malformed_line() {
        let text = |n: f64, q: f64| {
            format!(
                "# TYPE vllm:num_requests_waiting gauge\n\
                 vllm:num_requests_waiting{{model_name=\"m {{x}}\"}} {q}\n\
                 # TYPE vllm:e2e_request_latency_seconds histogram\n\
                 vllm:e2e_request_latency_seconds_bucket{{le=\"+Inf\",model_name=\"m\"}} {n}\n\
                 vllm:e2e_request_latency_seconds_sum{{model_name=\"m\"}} {}\n\
                 vllm:e2e_request_latency_seconds_count{{model_name=\"m\"}} {n}\n\
                 vllm:e2e_request_latency_seconds_created{{model_name=\"m\"}} 1.7e9\n\
                 vllm:prompt_tokens_total{{model_name=\"m\"}} {n} 1700000000000\n\
                 this is not a metric\n",
                n * 0.5
            )
        };
        let mut s = Scrapes::default();
        s.push(0.0, Ok(text(10.0, 1.0)));
        s.push(1.0, Ok(text(3.0, 5.0))); // the server restarted: counters reset
        let m = s.finish("u");
        assert_eq!(m.counter("vllm:e2e_request_latency_seconds_count{model_name=\"m\"}"), Some(3.0));
        assert_eq!(m.counter("vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"m\"}"), Some(3.0));
        assert_eq!(m.counter("vllm:prompt_tokens_total{model_name=\"m\"}"), Some(3.0), "untyped _total counts");
        assert!(!m.counters.keys().any(|k| k.contains("_created")));
        assert_eq!(m.gauges["vllm:num_requests_waiting{model_name=\"m {x}\"}"].max, 5.0);
        assert_eq!(m.malformed_lines, ["this is not a metric"]);
        let one = Exposition::parse("a 1\nb{c=\"d\"} NaN\n{x} 2\nd{e=\"unclosed 3\n");
        assert_eq!(one.values.len(), 2);
        assert_eq!(one.malformed.len(), 2);
    }
}
