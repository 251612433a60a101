//! The result of a replay run: vLLM's `benchmark_serving` JSON at the top level, benchkit's
//! [`Provenance`] beside it.

use serde::{Deserialize, Serialize};

use super::metrics::Summary;
use super::workload::{SampledWorkload, ShareGptLoad};
use crate::provenance::DatasetProvenance;
use crate::Provenance;

/// The offered request rate, as vLLM writes it: a number, or `"inf"` (all at once).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestRate {
    /// Requests per second.
    PerSecond(f64),
    /// Every request at once (vLLM's `inf`).
    Inf(InfTag),
}

/// The string `inf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InfTag {
    /// `"inf"`.
    #[serde(rename = "inf")]
    Inf,
}

impl RequestRate {
    /// Every request at once.
    pub const INF: RequestRate = RequestRate::Inf(InfTag::Inf);
}

/// `inf`, or requests per second (finite, > 0), as vLLM's `--request-rate`.
impl std::str::FromStr for RequestRate {
    type Err = crate::ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "inf" {
            return Ok(RequestRate::INF);
        }
        match s.trim().parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(RequestRate::PerSecond(r)),
            _ => Err(crate::ParseValueError::new("request rate", s, &["inf", "requests per second > 0"])),
        }
    }
}

impl std::fmt::Display for RequestRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestRate::PerSecond(r) => write!(f, "{r}"),
            RequestRate::Inf(_) => f.write_str("inf"),
        }
    }
}

/// One replay run, typed. Serialised, the top-level keys are vLLM's (`duration`, `completed`,
/// `request_throughput`, `mean_ttft_ms`, ..., `backend`, `model_id`, `tokenizer_id`,
/// `num_prompts`, `request_rate`, `burstiness`, `max_concurrency`, `date`), so scripts that read
/// vLLM's result files read these; `provenance` holds everything else about the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayResult {
    /// The serving metrics.
    #[serde(flatten)]
    pub summary: Summary,
    /// The target (`inproc:<model>`, `http:<url>`).
    pub backend: String,
    /// The model name sent to the server, or the model file.
    pub model_id: String,
    /// The tokenizer used to count prompt and output tokens.
    pub tokenizer_id: String,
    /// Requests measured (warmup excluded).
    pub num_prompts: usize,
    /// Offered rate.
    pub request_rate: RequestRate,
    /// Gamma shape of the arrivals (1 = Poisson).
    pub burstiness: f64,
    /// Bound on requests in flight.
    pub max_concurrency: Option<usize>,
    /// vLLM's `date`: local start time as `%Y%m%d-%H%M%S`.
    pub date: String,
    /// What the engine's process (the supervised worker, this process, or the server's PID
    /// when given) and the machine did while the requests ran; J per output token.
    #[serde(default)]
    pub telemetry: crate::telemetry::Telemetry,
    /// The server's own metrics (HTTP targets): counter deltas over the run (warmup requests
    /// included) and gauge series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<crate::telemetry::prometheus::ServerMetrics>,
    /// The client's check of itself: schedule lag (split by cause), client CPU and prompt
    /// token counts against the server's (`None` in result files from before the check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_check: Option<super::ClientCheck>,
    /// Why this run does not measure the server (`client saturated: ...`); `None`: valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// Build, machine, start (RFC 3339), seeds, model, dataset and every setting.
    pub provenance: Provenance,
}

impl ReplayResult {
    /// `date` as vLLM writes it, for now.
    pub fn vllm_date_now() -> String {
        chrono::Local::now().format("%Y%m%d-%H%M%S").to_string()
    }
}

/// The dataset provenance of a ShareGPT workload: file, hash, truncation and sampled ids.
pub fn sharegpt_dataset(load: &ShareGptLoad, sampled: &SampledWorkload) -> DatasetProvenance {
    DatasetProvenance {
        kind: "sharegpt".into(),
        path: Some(load.path.display().to_string()),
        sha256: Some(load.sha256.clone()),
        bytes: load.file_bytes,
        truncated: load.truncated_at.is_some(),
        truncation: load.truncated_at.map(|off| {
            format!(
                "file ends mid-record at byte {off}: {} complete records kept, {} malformed skipped",
                load.records_ok, load.records_malformed
            )
        }),
        sampled_ids: sampled.sampled_ids.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_vllm_keys_at_the_top() {
        let summary = Summary { duration: 2.0, completed: 3, request_throughput: 1.5, ..Summary::default() };
        let r = ReplayResult {
            summary,
            backend: "http:x".into(),
            model_id: "m".into(),
            tokenizer_id: "t".into(),
            num_prompts: 3,
            request_rate: RequestRate::INF,
            burstiness: 1.0,
            max_concurrency: Some(4),
            date: "20261202-230000".into(),
            telemetry: crate::telemetry::Telemetry::default(),
            server_metrics: None,
            client_check: None,
            invalid: None,
            provenance: crate::provenance::test_provenance().seed("workload", 7),
        };
        let v = serde_json::to_value(&r).unwrap();
        for k in ["duration", "completed", "request_throughput", "backend", "model_id", "num_prompts", "date"] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["request_rate"], "inf");
        assert_eq!(v["provenance"]["seeds"]["workload"], 7);
        assert!(v.get("invalid").is_none() && v.get("client_check").is_none(), "valid and unchecked: no keys");
        let back: ReplayResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let flagged = ReplayResult {
            client_check: Some(super::super::ClientCheck { saturated: true, ..Default::default() }),
            invalid: Some("client saturated: x".into()),
            ..r.clone()
        };
        let v = serde_json::to_value(&flagged).unwrap();
        assert_eq!(v["invalid"], "client saturated: x");
        assert_eq!(v["client_check"]["saturated"], true);
        assert_eq!(serde_json::from_value::<ReplayResult>(v).unwrap(), flagged);
        let finite = serde_json::to_value(RequestRate::PerSecond(2.5)).unwrap();
        assert_eq!(finite, 2.5);
        assert_eq!(serde_json::from_value::<RequestRate>(finite).unwrap(), RequestRate::PerSecond(2.5));
    }
}
