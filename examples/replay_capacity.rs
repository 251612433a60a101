//! Client capacity of benchkit's replay: how many streamed requests per second the HTTP target
//! and driver sustain, how far requests leave from their schedule, and how much memory a long
//! run takes. `scripts/bench_replay.py` runs it next to a Python asyncio/aiohttp client.
//!
//! ```sh
//! B=target/release/examples/replay_capacity
//! $B serve --port 8099 &                      # loopback server: a fixed reply, streamed at once
//! $B client --base-url http://127.0.0.1:8099 --rate 20000 --requests 200000 --warmup 10000 \
//!     --max-connections 1024 --workers 1 --spin-us 100  # what scripts/bench_replay.py runs
//! ```
//!
//! `serve` answers every `POST /v1/completions` with the same OpenAI-style SSE stream (`--tokens`
//! content chunks, a finish chunk, a usage chunk, `[DONE]`) without any delay, so the client is
//! the bottleneck. `client` replays `--requests` requests at `--rate` per second (`--arrivals
//! constant`, `poisson` or `gamma` with `--burstiness`) through [`benchkit::replay::drive_iter`] — requests are generated
//! lazily, so memory does not grow with the run — and prints one JSON object: achieved
//! throughput, schedule lag percentiles, TTFT, failures, peak RSS and the client's CPU per request.

use benchkit::replay::http::{Endpoint, HttpTarget, HttpTargetConfig};
use benchkit::replay::metrics::{Aggregator, SloConfig};
use benchkit::replay::workload::{Arrival, ArrivalTimes};
use benchkit::replay::{drive_iter, runqueue_wait_s, ChatMessage, DriveConfig, Request, Target};
use clap::{Parser, Subcommand};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// The client allocates a few small buffers per request (hyper, the record); glibc's malloc
// spent a tenth of the client's time on them at 20k req/s.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Client capacity benchmark for benchkit's replay (loopback server + client)")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve a fixed streamed completion on 127.0.0.1 (prints `listening on ADDR`).
    Serve {
        /// Port (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Content chunks per reply.
        #[arg(long, default_value_t = 4)]
        tokens: u32,
    },
    /// Replay requests against a server and print the figures as JSON.
    Client {
        /// Server root, e.g. http://127.0.0.1:8099; `instant`: no server, every request
        /// completes in this process the moment it is sent (the dispatcher and runtime alone).
        #[arg(long)]
        base_url: String,
        /// Offered requests per second.
        #[arg(long, default_value_t = 20000.0)]
        rate: f64,
        /// Requests (after warmup).
        #[arg(long, default_value_t = 200_000)]
        requests: usize,
        /// Warmup requests (sent first at the same rate, excluded from the figures).
        #[arg(long, default_value_t = 0)]
        warmup: usize,
        /// Poisson arrivals instead of a constant rate (`--arrivals poisson`).
        #[arg(long)]
        poisson: bool,
        /// `constant`, `poisson` or `gamma` (with `--burstiness`).
        #[arg(long, default_value = "constant")]
        arrivals: String,
        /// Gamma shape of `--arrivals gamma` (< 1: burstier than Poisson).
        #[arg(long, default_value_t = 1.0)]
        burstiness: f64,
        /// max_tokens asked for.
        #[arg(long, default_value_t = 4)]
        tokens: u32,
        /// At most this many requests in flight (the driver's bound: arrivals wait).
        #[arg(long)]
        max_concurrency: Option<usize>,
        /// At most this many connections (requests on the wire); unbounded when absent.
        #[arg(long)]
        max_connections: Option<usize>,
        /// tokio worker threads (0: a current-thread runtime).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Seed for Poisson arrivals.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Busy-wait this many microseconds before each arrival instead of sleeping
        /// (`DriveConfig::spin`; 0: always sleep on the timer).
        #[arg(long, default_value_t = 0)]
        spin_us: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Serve { port, tokens } => {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(serve(port, tokens))
        }
        Cmd::Client {
            base_url,
            rate,
            requests,
            warmup,
            poisson,
            arrivals,
            burstiness,
            tokens,
            max_concurrency,
            max_connections,
            workers,
            seed,
            spin_us,
        } => {
            let rt = match workers {
                0 => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
                n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?,
            };
            let arrival = match (poisson, arrivals.as_str()) {
                (true, _) | (false, "poisson") => Arrival::Poisson { rate },
                (false, "constant") => Arrival::Constant { rate },
                (false, "gamma") => Arrival::Gamma { rate, burstiness },
                (false, other) => anyhow::bail!("--arrivals {other:?}: expected constant, poisson or gamma"),
            };
            // Spawned, so the record loop runs on a worker next to the requests (block_on would
            // run it on this thread and wake it for every record).
            let options = DriveConfig { max_concurrency, spin: Duration::from_micros(spin_us) };
            let config = HttpTargetConfig {
                endpoint: Endpoint::Completions,
                api_key_env: None,
                request_timeout: Duration::from_secs(30),
                max_connections,
                ..HttpTargetConfig::new(base_url, "capacity")
            };
            let run = rt.spawn(client(config, arrival, requests, warmup, tokens, options, seed));
            let out = rt.block_on(run)??;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
    }
}

/// The whole HTTP response every request gets: `tokens` content chunks, a finish chunk, usage.
fn reply(tokens: u32) -> Vec<u8> {
    let mut body = String::new();
    let chunk = |text: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"cmpl-capacity\",\"object\":\"text_completion\",\"created\":0,\"model\":\"capacity\",\
             \"choices\":[{{\"index\":0,\"text\":\"{text}\",\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    for _ in 0..tokens {
        body.push_str(&chunk(" tok", "null"));
    }
    body.push_str(&chunk("", "\"length\""));
    body.push_str(&format!(
        "data: {{\"id\":\"cmpl-capacity\",\"object\":\"text_completion\",\"created\":0,\"model\":\"capacity\",\
         \"choices\":[],\"usage\":{{\"prompt_tokens\":4,\"completion_tokens\":{tokens},\"total_tokens\":{}}}}}\n\n",
        tokens + 4
    ));
    body.push_str("data: [DONE]\n\n");
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

async fn serve(port: u16, tokens: u32) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let reply: Arc<[u8]> = reply(tokens).into();
    loop {
        // Out of descriptors (a client opening connections faster than it closes them):
        // keep serving the open ones instead of exiting.
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let reply = reply.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(sock, &reply).await {
                eprintln!("connection: {e}");
            }
        });
    }
}

/// HTTP/1.1 keep-alive: answers each complete request (head + Content-Length body) in order.
async fn connection(mut sock: tokio::net::TcpStream, reply: &[u8]) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(16 << 10);
    loop {
        let mut used = 0;
        while let Some(h) = memchr::memmem::find(&buf[used..], b"\r\n\r\n") {
            let head = &buf[used..used + h];
            let Some(len) = content_length(head) else {
                sock.write_all(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await?;
                return Ok(());
            };
            let end = used + h + 4 + len;
            if buf.len() < end {
                break;
            }
            used = end;
            sock.write_all(reply).await?;
        }
        buf.drain(..used);
        if sock.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    if !head.starts_with("POST ") && !head.starts_with("GET ") {
        return None;
    }
    let mut len = Some(0);
    for line in head.split("\r\n").skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            } else if k.trim().eq_ignore_ascii_case("transfer-encoding") {
                return None; // chunked request bodies are not needed here
            }
        }
    }
    len
}

/// Completes every request the moment it is sent, with `tokens` output tokens: what is left of
/// the schedule lag is the dispatcher's and the runtime's.
struct Instant0 {
    tokens: u32,
}

impl Target for Instant0 {
    fn describe(&self) -> String {
        "instant".into()
    }

    fn send(&self, r: Request, start: std::time::Instant) -> benchkit::replay::RecordFuture {
        let now = start.elapsed().as_nanos() as u64;
        let tokens = self.tokens;
        Box::pin(async move {
            benchkit::replay::RequestRecord {
                id: r.id,
                conversation_id: r.conversation_id,
                turn: r.turn,
                warmup: r.warmup,
                scheduled_ns: r.scheduled_ns,
                sent_ns: now,
                first_token_ns: Some(now),
                itl_ns: Vec::new(),
                end_ns: now,
                input_tokens: r.prompt_len,
                output_tokens: tokens,
                output_tokens_source: benchkit::replay::TokenCountSource::Engine,
                failure: None,
                text: None,
            }
        })
    }
}

/// CPU time (user + system) this process has used, seconds (`/proc/self/stat`, clock ticks).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = |key: &str| -> Option<f64> {
        status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse::<f64>().ok()
    };
    kb("VmHWM:").map(|k| k / 1024.0)
}

async fn client(
    config: HttpTargetConfig,
    arrival: Arrival,
    requests: usize,
    warmup: usize,
    tokens: u32,
    options: DriveConfig,
    seed: u64,
) -> anyhow::Result<serde_json::Value> {
    let max_connections = config.max_connections;
    let target: Arc<dyn Target> = if config.base_url == "instant" {
        Arc::new(Instant0 { tokens })
    } else {
        Arc::new(HttpTarget::new(config, None)?)
    };
    let prompt = vec![ChatMessage { role: "user".into(), content: "Say hello.".into() }];
    let total = requests + warmup;
    let times = ArrivalTimes::new(&arrival, seed)?;
    // Generated on the dispatcher thread as they are due: nothing is held per request.
    let gen = times
        .take(total)
        .enumerate()
        .map(move |(i, t)| Request::chat(i as u64, prompt.clone(), 4, tokens).at(t).warmup(i < warmup));
    let mut agg = Aggregator::new(SloConfig::default());
    let rss_before = peak_rss_mb();
    let cpu_before = cpu_seconds();
    let runq_before = runqueue_wait_s();
    // Largest schedule lag per 100 ms window of the schedule: shows when the client fell behind.
    let mut windows: Vec<u64> = Vec::new();
    let stats = drive_iter(target, gen, &options, |rec| {
        let w = (rec.scheduled_ns / 100_000_000) as usize;
        if windows.len() <= w {
            windows.resize(w + 1, 0);
        }
        windows[w] = windows[w].max(rec.sent_ns.saturating_sub(rec.scheduled_ns));
        agg.record(&rec)
    })
    .await;
    let worst: Vec<(usize, f64)> = {
        let mut v: Vec<(usize, f64)> = windows.iter().enumerate().map(|(i, &ns)| (i, ns as f64 / 1e6)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(5);
        v
    };
    let cpu = cpu_before.zip(cpu_seconds()).map(|(a, b)| b - a);
    let runq = runq_before.zip(runqueue_wait_s()).map(|(a, b)| b - a);
    let summary = agg.finish(stats.duration);
    let (rate, arrivals) = match arrival {
        Arrival::Constant { rate } => (rate, "constant".to_string()),
        Arrival::Poisson { rate } => (rate, "poisson".to_string()),
        Arrival::Gamma { rate, burstiness } => (rate, format!("gamma({burstiness})")),
        Arrival::AllAtOnce | Arrival::Recorded { .. } => (f64::INFINITY, "all at once".to_string()),
    };
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let lag = &summary.schedule_lag;
    Ok(serde_json::json!({
        "client": "benchkit",
        "offered_rate": rate,
        "arrivals": arrivals,
        "workers": workers,
        "requests": requests,
        "warmup": warmup,
        "max_concurrency": options.max_concurrency,
        "spin_us": options.spin.as_micros() as u64,
        "max_connections": max_connections,
        "completed": summary.completed,
        "failed": summary.failed,
        "failures": summary.failures,
        "duration_s": summary.duration,
        "request_throughput": summary.request_throughput,
        // Every request answered (warmup included) over the whole run: the rate sustained.
        "achieved_rate": (summary.completed + summary.warmup_excluded) as f64 / summary.duration.max(1e-9),
        "output_throughput": summary.output_throughput,
        "total_output_tokens": summary.total_output_tokens,
        "lag_median_ms": lag.median_ms,
        "lag_p99_ms": lag.p99_ms,
        "lag_max_ms": lag.max_ms,
        "lag_mean_ms": lag.mean_ms,
        // Where the lag came from: the dispatcher late, the task started late (busy workers),
        // the target waiting (a connection slot).
        "lag_parts": stats.lag,
        "ttft_median_ms": summary.ttft.median_ms,
        "ttft_p99_ms": summary.ttft.p99_ms,
        "e2el_p99_ms": summary.e2el.p99_ms,
        "peak_rss_mb_before_run": rss_before,
        "worst_lag_windows_100ms": worst.iter().map(|(i, ms)| serde_json::json!({"at_s": *i as f64 / 10.0, "max_lag_ms": ms})).collect::<Vec<_>>(),
        "peak_rss_mb": peak_rss_mb(),
        // The client's own CPU over the run (all threads), per request sent.
        "cpu_s": cpu,
        "cpu_us_per_request": cpu.map(|c| c * 1e6 / (stats.sent.max(1)) as f64),
        // Time this process's threads were runnable but waited for a CPU (another process, the
        // server included, had it), ms per second of the run: the client's share of the lag
        // that is the machine's, not the client's.
        "runqueue_wait_ms_per_s": runq.map(|w| w * 1e3 / stats.duration.as_secs_f64().max(1e-9)),
        // Busy fraction of the client's worker threads (the self-check's client CPU).
        "cpu_utilisation": cpu.map(|c| c / stats.duration.as_secs_f64().max(1e-9) / workers.max(1) as f64),
    }))
}
