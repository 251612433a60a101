//! What the store keeps of a result: the run it belongs to ([`RunMeta`]) and the record
//! ([`StoredRecord`]): its key parameters, its metrics with their raw samples, its telemetry,
//! and the full result as JSON. Each result type converts into it here, once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Provenance;

/// A run: one invocation (a sweep, a perplexity job, a replay, an import) on one build and
/// machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// What it measured: `bench`, `perplexity`, `kl-divergence`, `replay`.
    pub kind: String,
    /// Who produced it: `benchkit`, `llama-bench`, `vllm`.
    pub source: String,
    /// A free label (`--label`, or the imported file's name).
    pub label: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// The benchkit that produced it (none for imports of other tools).
    pub benchkit_version: Option<String>,
    /// llama.cpp commit.
    pub build_commit: String,
    /// llama.cpp build number.
    pub build_number: u64,
    /// The machine: CPU model, and GPUs when there are any (llama-bench's `cpu_info` and
    /// `gpu_info`, so imports and benchkit's rows name a machine alike).
    pub machine: String,
    /// Host name.
    pub host: Option<String>,
    /// `ok`, or why there are no (or not all) records: `build_failed`, `failed`, `interrupted`.
    pub status: String,
    /// What went wrong, for a status other than `ok`.
    pub error: Option<String>,
    /// The run's provenance (a [`Provenance`] for benchkit's runs; what the file said for
    /// imports).
    pub provenance: serde_json::Value,
}

/// The machine name for a CPU and its GPUs.
pub fn machine_name(cpu_info: &str, gpu_info: &str) -> String {
    if gpu_info.trim().is_empty() {
        cpu_info.trim().to_string()
    } else {
        format!("{} / {}", cpu_info.trim(), gpu_info.trim())
    }
}

impl RunMeta {
    /// A benchkit run of `kind` from its provenance.
    pub fn from_provenance(kind: &str, p: &Provenance) -> Self {
        RunMeta {
            kind: kind.to_string(),
            source: "benchkit".into(),
            label: None,
            started_at: p.started_at.clone(),
            benchkit_version: Some(p.benchkit_version.clone()),
            build_commit: p.build.build_commit.clone(),
            build_number: p.build.build_number,
            machine: machine_name(&p.system.cpu_info, &p.system.gpu_info),
            host: p.host.clone(),
            status: "ok".into(),
            error: None,
            provenance: serde_json::to_value(p).unwrap_or(serde_json::Value::Null),
        }
    }

    /// With a label.
    pub fn label(mut self, label: Option<String>) -> Self {
        self.label = label;
        self
    }
}

/// One metric of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// `t/s`, `ms`, `req/s`, `J/token`, ...
    pub unit: String,
    /// Whether more is better (throughput) or less (latency, perplexity).
    pub higher_is_better: bool,
    /// The mean, as the result reports it.
    pub mean: Option<f64>,
    /// Its standard deviation (of the samples; for perplexity, its uncertainty).
    pub stddev: Option<f64>,
    /// How many values the mean is over.
    pub n: u64,
    /// The raw values (repetitions, requests), where the result has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
}

impl Metric {
    /// A metric from its raw values (mean and sample stddev computed).
    pub fn from_samples(unit: &str, higher_is_better: bool, samples: Vec<f64>) -> Self {
        let m = crate::stats::Moments::of(&samples);
        Metric {
            unit: unit.into(),
            higher_is_better,
            mean: (m.count() > 0).then(|| m.mean()),
            stddev: (m.count() > 1).then(|| m.sample_stddev()),
            n: m.count(),
            samples,
        }
    }

    /// A metric known only by its summary.
    pub fn summary(unit: &str, higher_is_better: bool, mean: f64, stddev: Option<f64>, n: u64) -> Self {
        Metric {
            unit: unit.into(),
            higher_is_better,
            mean: mean.is_finite().then_some(mean),
            stddev: stddev.filter(|s| s.is_finite()),
            n,
            samples: Vec::new(),
        }
    }
}

/// One record: a bench grid point, a perplexity or KL-divergence result, a replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// `bench`, `perplexity`, `kl-divergence`, `replay`.
    pub kind: String,
    /// The test: `pp512`, `tg128`, `ppl`, `kld`, `replay`.
    pub name: String,
    /// The model as llama.cpp describes it (`gemma3 270M Q4_K - Medium`), or the served model.
    pub model: String,
    /// `ok`, `failed`, `crashed`, `timeout`, `cancelled`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The key parameters, as text (llama-bench's spelling for bench fields): what a
    /// comparison joins on.
    pub params: BTreeMap<String, String>,
    /// Measured values by name: `ts` (bench), `ppl`, `kld`, `ttft`, `tpot`, `itl`, `e2el`, `rps`,
    /// `output_throughput`, `j_per_token`.
    pub metrics: BTreeMap<String, Metric>,
    /// The telemetry summary.
    pub telemetry: Option<serde_json::Value>,
    /// The whole result as its type serialises.
    pub result: serde_json::Value,
}

impl StoredRecord {
    /// A measured (`ok`) record with these parameters and metrics, no telemetry and a null
    /// result: for programs that store results of their own making.
    pub fn new<K: Into<String>, V: Into<String>, M: Into<String>>(
        kind: &str,
        name: &str,
        model: &str,
        params: impl IntoIterator<Item = (K, V)>,
        metrics: impl IntoIterator<Item = (M, Metric)>,
    ) -> Self {
        StoredRecord {
            kind: kind.into(),
            name: name.into(),
            model: model.into(),
            status: "ok".into(),
            error: None,
            params: params.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            metrics: metrics.into_iter().map(|(k, m)| (k.into(), m)).collect(),
            telemetry: None,
            result: serde_json::Value::Null,
        }
    }

    fn energy_metric(&mut self) {
        let j =
            self.telemetry.as_ref().and_then(|t| t.pointer("/energy/j_per_token")).and_then(serde_json::Value::as_f64);
        if let Some(j) = j {
            self.metrics.insert("j_per_token".into(), Metric::summary("J/token", false, j, None, 1));
        }
    }
}

/// llama-bench fields that identify the build, the machine or the measurement rather than the
/// configuration: not join keys.
#[cfg(feature = "bench")]
pub(crate) const BENCH_NON_KEYS: &[&str] = &[
    "build_commit",
    "build_number",
    "cpu_info",
    "gpu_info",
    "model_filename",
    "model_type",
    "test_time",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
    "samples_ns",
    "samples_ts",
    "status",
    "error",
    "test",
    "repetitions",
    "warmup",
    "seed",
    "model_file_bytes",
];

/// llama-bench's test name for a prompt/generation/depth triple, as its table prints it.
pub(crate) fn bench_test_name(n_prompt: u64, n_gen: u64, n_depth: u64) -> String {
    let base = match (n_prompt, n_gen) {
        (p, 0) => format!("pp{p}"),
        (0, g) => format!("tg{g}"),
        (p, g) => format!("pp{p}+tg{g}"),
    };
    if n_depth > 0 {
        format!("{base} @ d{n_depth}")
    } else {
        base
    }
}

#[cfg(feature = "bench")]
impl From<&crate::bench::BenchRecord> for StoredRecord {
    fn from(r: &crate::bench::BenchRecord) -> Self {
        let params = crate::bench::FIELDS
            .iter()
            .filter(|f| !BENCH_NON_KEYS.contains(&f.name))
            .map(|f| (f.name.to_string(), f.value(r)))
            .collect();
        let mut metrics = BTreeMap::new();
        if r.status.is_ok() {
            metrics.insert("ts".into(), Metric::from_samples("t/s", true, r.samples_ts.clone()));
        }
        let mut rec = StoredRecord {
            kind: "bench".into(),
            name: r.test.clone(),
            model: r.model_type.clone(),
            status: r.status.as_str().into(),
            error: r.error.clone(),
            params,
            metrics,
            telemetry: serde_json::to_value(&r.telemetry).ok(),
            result: serde_json::to_value(r).unwrap_or(serde_json::Value::Null),
        };
        rec.energy_metric();
        rec
    }
}

/// Replay metrics from a vLLM-shaped result object (benchkit's replay result or vLLM's
/// benchmark JSON): latencies with per-request samples where the file has them (`ttfts`,
/// `itls`, `e2els`, in seconds, as vLLM's `--save-detailed` writes), throughputs.
pub(crate) fn replay_metrics(v: &serde_json::Value) -> BTreeMap<String, Metric> {
    let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    let mut out = BTreeMap::new();
    let seconds = |k: &str| -> Vec<f64> {
        v.get(k)
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).map(|s| s * 1000.0).collect())
            .unwrap_or_default()
    };
    let flat_itls: Vec<f64> = v
        .get("itls")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_array)
                .flatten()
                .filter_map(serde_json::Value::as_f64)
                .map(|s| s * 1000.0)
                .collect()
        })
        .unwrap_or_default();
    for (name, samples) in
        [("ttft", seconds("ttfts")), ("tpot", Vec::new()), ("itl", flat_itls), ("e2el", seconds("e2els"))]
    {
        let Some(mean) = f(&format!("mean_{name}_ms")) else { continue };
        let n = f(&format!("count_{name}")).or_else(|| f("completed")).unwrap_or(0.0) as u64;
        let mut m = Metric::summary("ms", false, mean, f(&format!("std_{name}_ms")), n);
        if !samples.is_empty() {
            m.samples = samples;
        }
        out.insert(name.to_string(), m);
    }
    let n = f("completed").unwrap_or(0.0) as u64;
    for (name, key, unit) in [
        ("rps", "request_throughput", "req/s"),
        ("output_throughput", "output_throughput", "tok/s"),
        ("total_token_throughput", "total_token_throughput", "tok/s"),
    ] {
        if let Some(x) = f(key) {
            out.insert(name.into(), Metric::summary(unit, true, x, None, n));
        }
    }
    out
}

/// Replay parameters from a vLLM-shaped result object.
pub(crate) fn replay_params(v: &serde_json::Value) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    for k in ["backend", "num_prompts", "request_rate", "burstiness", "max_concurrency"] {
        match v.get(k) {
            Some(serde_json::Value::String(s)) => p.insert(k.into(), s.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(x) => p.insert(k.into(), x.to_string()),
        };
    }
    p
}

#[cfg(feature = "replay")]
impl From<&crate::replay::ReplayResult> for StoredRecord {
    fn from(r: &crate::replay::ReplayResult) -> Self {
        let result = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
        let mut rec = StoredRecord {
            kind: "replay".into(),
            name: "replay".into(),
            model: r.model_id.clone(),
            status: if r.summary.completed > 0 { "ok" } else { "failed" }.into(),
            error: (r.summary.completed == 0).then(|| "no request completed".to_string()),
            params: replay_params(&result),
            metrics: replay_metrics(&result),
            telemetry: serde_json::to_value(&r.telemetry).ok(),
            result,
        };
        rec.energy_metric();
        rec
    }
}

#[cfg(feature = "replay")]
impl StoredRecord {
    /// Adds the per-request latencies of a replay (what its records file holds) as raw
    /// samples, so two replays compare with a bootstrap CI and a rank test.
    pub fn with_request_samples(mut self, requests: &[crate::replay::RequestRecord]) -> Self {
        const MS: f64 = 1e6;
        let ok: Vec<_> = requests.iter().filter(|r| !r.warmup && r.failure.is_none()).collect();
        let ttft: Vec<f64> =
            ok.iter().filter_map(|r| r.first_token_ns.map(|t| t.saturating_sub(r.sent_ns) as f64 / MS)).collect();
        let e2el: Vec<f64> = ok.iter().map(|r| r.end_ns.saturating_sub(r.sent_ns) as f64 / MS).collect();
        let itl: Vec<f64> = ok.iter().flat_map(|r| r.itl_ns.iter().map(|&x| x as f64 / MS)).collect();
        let tpot: Vec<f64> = ok
            .iter()
            .filter(|r| r.output_tokens > 1)
            .filter_map(|r| {
                let first = r.first_token_ns?;
                Some(r.end_ns.saturating_sub(first) as f64 / MS / f64::from(r.output_tokens - 1))
            })
            .collect();
        for (name, s) in [("ttft", ttft), ("tpot", tpot), ("itl", itl), ("e2el", e2el)] {
            if let Some(m) = self.metrics.get_mut(name).filter(|_| !s.is_empty()) {
                m.samples = s;
            }
        }
        self
    }
}

#[cfg(feature = "perplexity")]
impl From<&crate::perplexity::PerplexityResult> for StoredRecord {
    fn from(r: &crate::perplexity::PerplexityResult) -> Self {
        let mut rec = perplexity_record("perplexity", "ppl", &r.model.description, &r.params, &r.provenance, r);
        rec.metrics
            .insert("ppl".into(), Metric::summary("ppl", false, r.ppl, Some(r.ppl_uncertainty), r.n_scored as u64));
        rec.metrics.insert("tokens_per_s".into(), Metric::summary("t/s", true, r.timings.tokens_per_s, None, 1));
        rec.telemetry = serde_json::to_value(&r.telemetry).ok();
        rec.energy_metric();
        rec
    }
}

#[cfg(feature = "perplexity")]
impl From<&crate::perplexity::KlDivergenceResult> for StoredRecord {
    fn from(r: &crate::perplexity::KlDivergenceResult) -> Self {
        let mut rec = perplexity_record("kl-divergence", "kld", &r.model.description, &r.params, &r.provenance, r);
        rec.metrics.insert(
            "kld".into(),
            Metric::summary("nats", false, r.kld.value, Some(r.kld.uncertainty), r.n_scored as u64),
        );
        rec.metrics.insert("tokens_per_s".into(), Metric::summary("t/s", true, r.timings.tokens_per_s, None, 1));
        rec.telemetry = serde_json::to_value(&r.telemetry).ok();
        rec.energy_metric();
        rec
    }
}

#[cfg(feature = "perplexity")]
fn perplexity_record(
    kind: &str,
    name: &str,
    model: &str,
    params: &crate::perplexity::RunInfo,
    provenance: &Provenance,
    result: &impl Serialize,
) -> StoredRecord {
    let mut p = BTreeMap::new();
    if let Ok(serde_json::Value::Object(req)) = serde_json::to_value(&params.requested) {
        for (k, v) in req {
            if matches!(v, serde_json::Value::Object(_) | serde_json::Value::Array(_)) {
                continue;
            }
            p.insert(k, v.as_str().map_or_else(|| v.to_string(), str::to_string));
        }
    }
    p.insert("n_chunk".into(), params.n_chunk.to_string());
    if let Some(d) = &provenance.dataset {
        if let Some(h) = &d.sha256 {
            p.insert("dataset_sha256".into(), h.clone());
        }
    }
    StoredRecord {
        result: serde_json::to_value(result).unwrap_or(serde_json::Value::Null),
        ..StoredRecord::new(kind, name, model, p, std::iter::empty::<(String, Metric)>())
    }
}
