//! The OpenAI-compatible HTTP target against a fault-injecting loopback mock, the serving
//! metrics aggregator, SSE decoding edge cases and the JSON-lines record writer.

#[path = "support/mock_openai.rs"]
mod mock_openai;

use benchkit::replay::http::sse::{SseDecoder, SseError};
use benchkit::replay::http::{Endpoint, HttpTarget, HttpTargetConfig, Tokenizer};
use benchkit::replay::metrics::{read_records, Aggregator, RecordWriter, SloConfig, Summary};
use benchkit::replay::{drive, drive_iter, DriveConfig, Failure, Request, RequestRecord, Target, TokenCountSource};
use mock_openai::{Behaviour, MockServer, ROLE_DELAY, TOKEN_DELAY};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn request(id: u64, behaviour: Behaviour, output_len: u32) -> Request {
    Request::text(id, format!("hello {}", behaviour.marker()), 2, output_len)
}

fn config(server: &MockServer, endpoint: Endpoint, timeout: Duration) -> HttpTargetConfig {
    let mut c = HttpTargetConfig::new(server.base_url(), "mock-model");
    c.endpoint = endpoint;
    c.api_key_env = None;
    c.request_timeout = timeout;
    c
}

const TIMEOUT: Duration = Duration::from_millis(1500);

/// Sends a mixed batch concurrently (through the driver) and checks every record.
async fn mixed_batch(endpoint: Endpoint, tokenizer: Option<Tokenizer>, keep_text: bool) {
    let server = MockServer::start().await;
    let mut cfg = config(&server, endpoint, TIMEOUT);
    cfg.keep_text = keep_text;
    let target: Arc<dyn Target> = Arc::new(HttpTarget::new(cfg, tokenizer.clone()).unwrap());
    let mut requests = Vec::new();
    let mut behaviour_of = BTreeMap::new();
    let mut id = 0;
    for b in Behaviour::ALL {
        let copies = if b == Behaviour::Normal { 24 } else { 3 };
        for k in 0..copies {
            let mut r = request(id, b, 3 + (id % 7) as u32);
            // A few warmup requests: sent, but excluded from the aggregate.
            r.warmup = b == Behaviour::Normal && k < 4;
            r.scheduled_ns = id * 100_000;
            behaviour_of.insert(id, b);
            requests.push(r);
            id += 1;
        }
    }
    let by_id: BTreeMap<u64, Request> = requests.iter().map(|r| (r.id, r.clone())).collect();
    let mut records = Vec::new();
    let t0 = Instant::now();
    let stats = drive(target, requests, &DriveConfig::default(), |r| records.push(r)).await;
    assert!(t0.elapsed() < TIMEOUT * 3, "the batch is bounded by the request timeout");
    assert_eq!(records.len(), by_id.len());

    let mut agg = Aggregator::default();
    let (mut ok_tokens, mut ok_count, mut warm_tokens) = (0u64, 0u64, 0u64);
    let mut expected_failures: BTreeMap<String, u64> = BTreeMap::new();
    for rec in &records {
        agg.record(rec);
        let req = &by_id[&rec.id];
        let b = behaviour_of[&rec.id];
        assert!(rec.sent_ns >= rec.scheduled_ns && rec.end_ns >= rec.sent_ns, "{rec:?}");
        let expect_kind = |kind: &str, ok: bool| assert!(ok, "{b:?} should fail with {kind}: {rec:?}");
        let kind = match b {
            Behaviour::Normal
            | Behaviour::RoleDelay
            | Behaviour::NoUsage
            | Behaviour::TokenDelay
            | Behaviour::SplitCrlf
            | Behaviour::DoneStall => {
                assert!(rec.ok(), "{b:?}: {rec:?}");
                if b == Behaviour::DoneStall {
                    // Ends at [DONE], not when the request timeout gave up on the body.
                    assert!(rec.end_ns - rec.sent_ns < TIMEOUT.as_nanos() as u64 / 2, "{rec:?}");
                }
                assert_eq!(rec.output_tokens, req.output_len, "{b:?}");
                let first = rec.first_token_ns.expect("first token");
                assert!(first >= rec.sent_ns && first <= rec.end_ns);
                assert_eq!(rec.itl_ns.len(), req.output_len as usize - 1, "{b:?}");
                if rec.warmup {
                    warm_tokens += u64::from(rec.output_tokens);
                } else {
                    ok_tokens += u64::from(rec.output_tokens);
                    ok_count += 1;
                }
                if b == Behaviour::NoUsage {
                    let expected = match tokenizer {
                        Some(_) => TokenCountSource::ClientTokenizer,
                        None => TokenCountSource::ContentChunks,
                    };
                    assert_eq!(rec.output_tokens_source, expected);
                    assert_eq!(rec.input_tokens, req.prompt_len);
                } else {
                    assert_eq!(rec.output_tokens_source, TokenCountSource::ServerUsage);
                    assert!(rec.input_tokens > req.prompt_len, "usage's prompt tokens are used");
                }
                if b == Behaviour::RoleDelay {
                    // TTFT is the first content chunk, not the role-only chunk before the delay.
                    assert!(first - rec.sent_ns >= ROLE_DELAY.as_nanos() as u64, "{rec:?}");
                }
                if b == Behaviour::TokenDelay {
                    // The server sleeps TOKEN_DELAY between chunks. The median gap (robust to a
                    // chunk the loaded client read late, which shortens the next gap) shows the
                    // gaps are taken between content chunks.
                    let min = (TOKEN_DELAY.as_nanos() as u64) * 2 / 3;
                    let mut gaps = rec.itl_ns.clone();
                    gaps.sort_unstable();
                    assert_eq!(gaps.len() + 1, rec.output_tokens as usize);
                    assert!(gaps[gaps.len() / 2] >= min, "{:?}", rec.itl_ns);
                }
                if keep_text {
                    assert_eq!(rec.text.as_deref(), Some("tok ".repeat(req.output_len as usize).as_str()));
                } else {
                    assert_eq!(rec.text, None);
                }
                continue;
            }
            Behaviour::Http500 => {
                let f = rec.failure.as_ref();
                expect_kind(
                    "http 500",
                    matches!(f, Some(Failure::Http { status: 500, body }) if body.contains("mock internal error")),
                );
                "http"
            }
            Behaviour::Http429 => {
                expect_kind("http 429", matches!(rec.failure, Some(Failure::Http { status: 429, .. })));
                "http"
            }
            Behaviour::Stall => {
                expect_kind("timeout", rec.failure == Some(Failure::Timeout));
                assert!(rec.end_ns - rec.sent_ns >= TIMEOUT.as_nanos() as u64);
                assert!(rec.first_token_ns.is_some(), "partial progress is kept");
                "timeout"
            }
            Behaviour::Drop => {
                expect_kind("connection", matches!(rec.failure, Some(Failure::Connection { .. })));
                "connection"
            }
            Behaviour::Malformed => {
                expect_kind("stream", matches!(rec.failure, Some(Failure::Stream { .. })));
                "stream"
            }
            Behaviour::ErrorEvent => {
                let f = rec.failure.as_ref();
                expect_kind(
                    "server error",
                    matches!(f, Some(Failure::ServerError { message }) if message == "mock generation failed"),
                );
                "server_error"
            }
            Behaviour::ContextExceeded => {
                expect_kind("context", matches!(rec.failure, Some(Failure::ContextExceeded { .. })));
                "context_exceeded"
            }
        };
        *expected_failures.entry(kind.to_string()).or_default() += 1;
    }
    let s = agg.finish(stats.duration);
    assert_eq!(s.completed, ok_count);
    assert_eq!(s.completed, 20 + 3 * 5);
    assert_eq!(s.warmup_excluded, 4);
    assert_eq!(s.failed, 3 * 7);
    assert_eq!(s.failures, expected_failures);
    assert_eq!(s.total_output_tokens, ok_tokens);
    assert_eq!(s.total_output_tokens + warm_tokens, server.stats.completed_tokens.load(Ordering::Relaxed));
    assert_eq!(s.output_tokens_source.get("server_usage"), Some(&(ok_count - 3)));
    let fallback = if tokenizer.is_some() { "client_tokenizer" } else { "content_chunks" };
    assert_eq!(s.output_tokens_source.get(fallback), Some(&3));
    assert_eq!(s.ttft.count, ok_count);
    assert!(s.ttft.max_ms >= ROLE_DELAY.as_secs_f64() * 1e3);
    assert!(s.ttft_from_scheduled.mean_ms >= s.ttft.mean_ms);
    assert!(s.e2el_from_scheduled.mean_ms >= s.e2el.mean_ms);
    assert_eq!(s.schedule_lag.count, ok_count + s.failed);
    assert!(s.request_throughput > 0.0 && s.output_throughput > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_batch_with_faults_is_classified_and_counted() {
    mixed_batch(Endpoint::ChatCompletions, None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_batch_with_tokenizer_and_text() {
    let words: Tokenizer = Arc::new(|s: &str| s.split_whitespace().count());
    mixed_batch(Endpoint::Completions, Some(words), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_a_connection_failure() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = HttpTargetConfig::new(format!("http://127.0.0.1:{port}"), "m");
    c.api_key_env = None;
    c.request_timeout = Duration::from_secs(5);
    let t = HttpTarget::new(c, None).unwrap();
    let rec = t.send(request(7, Behaviour::Normal, 4), Instant::now()).await;
    assert!(matches!(rec.failure, Some(Failure::Connection { .. })), "{rec:?}");
    assert_eq!(rec.id, 7);
    assert_eq!(rec.first_token_ns, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_is_sent_but_never_shown_and_body_is_openai_shaped() {
    let server = MockServer::start().await;
    let env = format!("BENCHKIT_TEST_KEY_{}", std::process::id());
    let secret = "sk-test-very-secret-123";
    std::env::set_var(&env, secret);
    let mut cfg = config(&server, Endpoint::ChatCompletions, TIMEOUT);
    cfg.api_key_env = Some(env.clone());
    cfg.extra_body.insert("top_k".into(), serde_json::json!(1));
    let t = HttpTarget::new(cfg, None).unwrap();
    std::env::remove_var(&env);
    assert!(t.describe().starts_with("http:http://127.0.0.1:"));
    assert!(!format!("{t:?}").contains(secret), "Debug redacts the key");
    assert!(!serde_json::to_string(t.config()).unwrap().contains(secret));
    let rec = t.send(request(1, Behaviour::Normal, 5), Instant::now()).await;
    assert!(rec.ok(), "{rec:?}");
    assert_eq!(server.stats.last_authorization.lock().unwrap().as_deref(), Some(format!("Bearer {secret}").as_str()));
    let body: serde_json::Value = serde_json::from_slice(&server.stats.last_body.lock().unwrap()).unwrap();
    assert_eq!(body["model"], "mock-model");
    assert_eq!(body["max_tokens"], 5);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["ignore_eos"], true);
    assert_eq!(body["top_k"], 1);
    assert_eq!(body["messages"][0]["role"], "user");
}

/// Client throughput against a loopback server that streams a fixed reply at once.
/// `BENCHKIT_HTTP_BENCH_N` sets the number of requests (default 3000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_throughput() {
    let n: u64 = std::env::var("BENCHKIT_HTTP_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let server = MockServer::start().await;
    let target: Arc<dyn Target> =
        Arc::new(HttpTarget::new(config(&server, Endpoint::ChatCompletions, Duration::from_secs(30)), None).unwrap());
    let requests: Vec<Request> = (0..n).map(|i| request(i, Behaviour::Normal, 8)).collect();
    let mut agg = Aggregator::default();
    let opts = DriveConfig { max_concurrency: Some(64), ..Default::default() };
    let stats = drive(target, requests, &opts, |r| agg.record(&r)).await;
    let s = agg.finish(stats.duration);
    assert_eq!(s.completed, n, "{:?}", s.failures);
    assert_eq!(s.total_output_tokens, 8 * n);
    // Keep-alive: connections are reused (at most 64 requests are in flight at a time; a few
    // more connections may open while finished ones are on their way back to the pool).
    let connections = server.stats.connections.load(Ordering::Relaxed);
    assert!(connections <= 2 * 64, "{connections} connections for {n} requests");
    eprintln!(
        "loopback: {n} streamed requests in {:.3} s = {:.0} req/s ({} connections)",
        s.duration,
        s.request_throughput,
        server.stats.connections.load(Ordering::Relaxed)
    );
}

/// `drive_iter` pulls requests lazily (only those due are built), keeps the precise schedule,
/// chains a conversation's turns, and skips the rest of a conversation after a failed turn.
#[tokio::test(flavor = "current_thread")]
async fn drive_iter_is_lazy_precise_and_chains_turns() {
    use std::sync::atomic::AtomicU64;
    let server = MockServer::start().await;
    let target: Arc<dyn Target> =
        Arc::new(HttpTarget::new(config(&server, Endpoint::ChatCompletions, Duration::from_secs(10)), None).unwrap());
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();
    // 200 single-turn requests 1 ms apart, then a 3-turn conversation, then a conversation
    // whose first turn fails (HTTP 500) and whose second turn must not be sent.
    let gen = (0..200u64)
        .map(|i| Request { scheduled_ns: i * 1_000_000, ..request(i, Behaviour::Normal, 2) })
        .chain((0..3u32).map(|turn| Request {
            conversation_id: "conv".into(),
            turn,
            scheduled_ns: 200_000_000,
            ..request(1000 + u64::from(turn), Behaviour::Normal, 2)
        }))
        .chain((0..2u32).map(|turn| Request {
            conversation_id: "bad".into(),
            turn,
            scheduled_ns: 201_000_000,
            ..request(2000 + u64::from(turn), if turn == 0 { Behaviour::Http500 } else { Behaviour::Normal }, 2)
        }))
        .inspect(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
    let mut records = Vec::new();
    let mut pulled_at_first_record = None;
    let stats = drive_iter(target, gen, &DriveConfig::default(), |r| {
        pulled_at_first_record.get_or_insert(pulled.load(Ordering::Relaxed));
        records.push(r)
    })
    .await;
    assert_eq!(records.len(), 200 + 3 + 1);
    assert_eq!(stats.sent, 204);
    assert_eq!(stats.skipped_turns, 1);
    assert_eq!(pulled.load(Ordering::Relaxed), 205);
    // When the first request finished, the generator had not been run to the end.
    assert!(pulled_at_first_record.unwrap() < 100, "{pulled_at_first_record:?}");
    let mut lags: Vec<u64> = records.iter().map(|r| r.sent_ns - r.scheduled_ns).collect();
    assert!(records.iter().all(|r| r.sent_ns >= r.scheduled_ns));
    lags.sort_unstable();
    // tokio's timer alone rounds every wait up to the next millisecond.
    assert!(lags[lags.len() / 2] < 500_000, "median schedule lag {} ns", lags[lags.len() / 2]);
    let conv: Vec<&RequestRecord> = records.iter().filter(|r| r.conversation_id == "conv").collect();
    assert_eq!(conv.iter().map(|r| r.turn).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(conv.iter().all(|r| r.ok()));
    assert!(conv[1].sent_ns >= conv[0].end_ns && conv[2].sent_ns >= conv[1].end_ns);
    let bad: Vec<&RequestRecord> = records.iter().filter(|r| r.conversation_id == "bad").collect();
    assert_eq!(bad.len(), 1);
    assert!(matches!(bad[0].failure, Some(Failure::Http { status: 500, .. })));
}

/// With `DriveConfig::spin`, the dispatcher busy-waits for the last stretch before each
/// arrival: every request still leaves, never before its schedule, and nothing spins after.
#[tokio::test(flavor = "current_thread")]
async fn spinning_dispatcher_is_never_early_and_stops() {
    let server = MockServer::start().await;
    let target: Arc<dyn Target> =
        Arc::new(HttpTarget::new(config(&server, Endpoint::ChatCompletions, Duration::from_secs(10)), None).unwrap());
    let gen = (0..200u64).map(|i| Request { scheduled_ns: i * 1_000_000, ..request(i, Behaviour::Normal, 2) });
    let opts = DriveConfig { spin: Duration::from_micros(300), ..Default::default() };
    let mut lags = Vec::new();
    let stats = drive_iter(target, gen, &opts, |r| {
        assert!(r.ok(), "{:?}", r.failure);
        assert!(r.sent_ns >= r.scheduled_ns, "sent before its schedule: {r:?}");
        lags.push(r.sent_ns - r.scheduled_ns)
    })
    .await;
    assert_eq!((stats.sent, lags.len()), (200, 200));
    // How late they leave is a figure for `cargo bench --bench dispatch_lag` (sleeping and
    // spinning interleaved, side by side), not for a test on a shared machine.
    // Nothing spins once the schedule (200 ms) is done: the run ends with the last request.
    assert!(stats.duration < Duration::from_secs(5), "{:?}", stats.duration);
}

/// `max_connections` bounds the requests on the wire: the others wait, and their wait counts
/// as schedule lag (sent when they get a connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_bounds_requests_on_the_wire() {
    let server = MockServer::start().await;
    let mut cfg = config(&server, Endpoint::ChatCompletions, Duration::from_secs(10));
    cfg.max_connections = Some(0);
    assert!(matches!(HttpTarget::new(cfg.clone(), None), Err(benchkit::replay::http::HttpError::InvalidConfig { .. })));
    cfg.max_connections = Some(2);
    let target: Arc<dyn Target> = Arc::new(HttpTarget::new(cfg, None).unwrap());
    // Ten slow streams (4 chunks, TOKEN_DELAY apart), all due at once.
    let requests: Vec<Request> = (0..10).map(|i| request(i, Behaviour::TokenDelay, 4)).collect();
    let mut records = Vec::new();
    drive(target, requests, &DriveConfig::default(), |r| records.push(r)).await;
    assert_eq!(records.len(), 10);
    assert!(records.iter().all(|r| r.ok()), "{records:?}");
    let mut events: Vec<(u64, i32)> = records.iter().flat_map(|r| [(r.sent_ns, 1), (r.end_ns, -1)]).collect();
    events.sort_by_key(|&(t, d)| (t, d));
    let (mut on_wire, mut most) = (0, 0);
    for (_, d) in events {
        on_wire += d;
        most = most.max(on_wire);
    }
    assert_eq!(most, 2);
    // The last pair waited for four pairs of streams: ~4 x 3 x TOKEN_DELAY of lag.
    let max_lag = records.iter().map(|r| r.sent_ns - r.scheduled_ns).max().unwrap();
    assert!(max_lag >= 4 * 3 * TOKEN_DELAY.as_nanos() as u64 * 2 / 3, "max lag {max_lag} ns");
    assert!(server.stats.connections.load(Ordering::Relaxed) <= 4);
}

// ---- metrics ----

fn record(id: u64, ttft_ms: u64, e2e_ms: u64, output_tokens: u32, itl_ms: &[u64]) -> RequestRecord {
    let ms = 1_000_000;
    let scheduled = 10 * ms * id;
    let sent = scheduled + ms; // 1 ms schedule lag
    RequestRecord {
        id,
        conversation_id: format!("c{id}"),
        turn: 0,
        warmup: false,
        scheduled_ns: scheduled,
        sent_ns: sent,
        first_token_ns: Some(sent + ttft_ms * ms),
        itl_ns: itl_ms.iter().map(|g| g * ms).collect(),
        end_ns: sent + e2e_ms * ms,
        input_tokens: 10,
        output_tokens,
        output_tokens_source: TokenCountSource::ServerUsage,
        failure: None,
        text: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-3 * b.abs().max(1e-9)
}

#[test]
fn aggregator_known_latencies() {
    let mut agg = Aggregator::new(SloConfig { ttft_ms: Some(30.0), ..SloConfig::default() });
    // TTFTs 10..=50 ms (5 requests), E2E = TTFT + 90 ms over 10 tokens -> TPOT 10 ms.
    for (i, ttft) in [10u64, 20, 30, 40, 50].into_iter().enumerate() {
        agg.record(&record(i as u64, ttft, ttft + 90, 10, &[5, 10, 15]));
    }
    let mut warm = record(99, 5000, 9000, 10, &[1000]);
    warm.warmup = true;
    agg.record(&warm);
    let mut failed = record(100, 1, 2, 0, &[]);
    failed.failure = Some(Failure::Timeout);
    agg.record(&failed);
    let s = agg.finish(Duration::from_secs(2));
    assert_eq!((s.completed, s.failed, s.warmup_excluded), (5, 1, 1));
    assert_eq!(s.failures, BTreeMap::from([("timeout".to_string(), 1)]));
    assert_eq!((s.total_input_tokens, s.total_output_tokens), (50, 50));
    assert!(close(s.request_throughput, 2.5));
    assert!(close(s.output_throughput, 25.0));
    assert!(close(s.total_token_throughput, 50.0));
    assert!(close(s.request_goodput.unwrap(), 1.5), "3 of 5 meet TTFT <= 30 ms");
    assert!(close(s.ttft.mean_ms, 30.0));
    assert!(close(s.ttft.median_ms, 30.0), "{}", s.ttft.median_ms);
    assert!(close(s.ttft.std_ms, 200f64.sqrt()));
    assert!(close(s.ttft.p99_ms, 50.0));
    assert!(close(s.ttft.max_ms, 50.0));
    assert!(close(s.tpot.mean_ms, 10.0) && close(s.tpot.p99_ms, 10.0));
    assert_eq!(s.itl.count, 15);
    assert!(close(s.itl.mean_ms, 10.0) && close(s.itl.median_ms, 10.0) && close(s.itl.p99_ms, 15.0));
    assert!(close(s.e2el.mean_ms, 120.0));
    assert!(close(s.ttft_from_scheduled.mean_ms, 31.0));
    assert!(close(s.e2el_from_scheduled.median_ms, 121.0));
    assert_eq!(s.schedule_lag.count, 6, "failed requests have a schedule lag too");
    assert!(close(s.schedule_lag.mean_ms, 1.0));
    assert_eq!(s.output_tokens_source, BTreeMap::from([("server_usage".to_string(), 5)]));

    // vLLM's flat field names, and a lossless round trip.
    let v = serde_json::to_value(&s).unwrap();
    for key in [
        "duration",
        "completed",
        "request_goodput",
        "mean_ttft_ms",
        "median_tpot_ms",
        "std_itl_ms",
        "p99_e2el_ms",
        "p90_ttft_ms",
        "p95_itl_ms",
        "percentiles_ttft_ms",
        "mean_ttft_from_scheduled_ms",
        "p99_e2el_from_scheduled_ms",
        "mean_schedule_lag_ms",
        "total_token_throughput",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert!(v["percentiles_ttft_ms"][0].as_array().unwrap().len() == 2);
    let back: Summary = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

#[test]
fn goodput_applies_every_slo() {
    let slo =
        SloConfig { ttft_ms: Some(100.0), tpot_ms: Some(20.0), itl_ms: Some(50.0), e2e_ms: e2el_ms_alias_check() };
    let mut agg = Aggregator::new(slo);
    agg.record(&record(0, 50, 140, 10, &[10, 10])); // good: tpot 10
    agg.record(&record(1, 150, 240, 10, &[10])); // TTFT too high
    agg.record(&record(2, 50, 500, 10, &[10])); // TPOT 50 ms too high
    agg.record(&record(3, 50, 140, 10, &[10, 60])); // one ITL over 50 ms
    agg.record(&record(4, 50, 50, 1, &[])); // one token: TPOT not defined -> passes
    let s = agg.finish(Duration::from_secs(1));
    assert!(close(s.request_goodput.unwrap(), 2.0));
    assert_eq!(s.tpot.count, 4, "TPOT only for output_tokens > 1");
    let none = Aggregator::default().finish(Duration::from_secs(1));
    assert_eq!(none.request_goodput, None);
    assert!(serde_json::to_value(&none).unwrap().get("request_goodput").is_none());
}

fn e2el_ms_alias_check() -> Option<f64> {
    // vLLM names the objective `e2el`; both spellings parse.
    let a: SloConfig = serde_json::from_str(r#"{"e2el_ms": 1000}"#).unwrap();
    let b: SloConfig = serde_json::from_str(r#"{"e2e_ms": 1000}"#).unwrap();
    assert_eq!(a, b);
    a.e2e_ms
}

#[test]
fn record_writer_appends_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.jsonl");
    let mut w = RecordWriter::create(&path).unwrap();
    let mut a = record(0, 10, 20, 3, &[5]);
    a.failure = Some(Failure::Http { status: 429, body: "slow down".into() });
    let b = record(1, 10, 20, 3, &[5]);
    w.write(&a).unwrap();
    // Readable after every write, before the writer is closed.
    assert_eq!(read_records(&path).unwrap(), vec![a.clone()]);
    w.write(&b).unwrap();
    w.sync().unwrap();
    assert_eq!(w.records_written(), 2);
    drop(w);
    let mut w = RecordWriter::append(&path).unwrap();
    w.write(&b).unwrap();
    assert_eq!(read_records(&path).unwrap(), vec![a, b.clone(), b]);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
}

// ---- SSE decoding ----

fn events(pieces: &[&[u8]]) -> Vec<String> {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    for p in pieces {
        d.feed::<SseError>(p, |e| {
            out.push(String::from_utf8(e.data.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
    }
    d.finish::<SseError>(|e| {
        out.push(String::from_utf8(e.data.to_vec()).unwrap());
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn sse_event_split_across_chunks_and_crlf() {
    let lf: &[u8] = b"data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: [DONE]\n\n";
    let crlf: &[u8] = b": keep-alive\r\n\r\ndata: {\"choices\":[{\"text\":\"a\"}]}\r\n\r\ndata: [DONE]\r\n\r\n";
    let want = vec!["{\"choices\":[{\"text\":\"a\"}]}".to_string(), "[DONE]".to_string()];
    for stream in [lf, crlf] {
        assert_eq!(events(&[stream]), want);
        for i in 0..=stream.len() {
            assert_eq!(events(&[&stream[..i], &stream[i..]]), want, "split at {i}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events(&bytes), want, "one byte at a time");
    }
    // Multi-line data is joined with '\n'; an `event:` field is reported.
    let mut d = SseDecoder::new();
    let mut seen = Vec::new();
    d.feed::<SseError>(b"event: error\ndata: a\ndata: b\n\n", |e| {
        seen.push((e.event.to_vec(), e.data.to_vec()));
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, vec![(b"error".to_vec(), b"a\nb".to_vec())]);
}

/// A whole HTTP replay scrapes the server's `/metrics`: counter deltas that match what the
/// client counted, gauges as series, a failed scrape and a malformed line recorded, and the
/// client process's telemetry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_scrapes_the_servers_metrics() {
    use benchkit::replay::http::ScrapeConfig;
    use benchkit::replay::workload::{Arrival, LengthDist, ScheduleConfig};
    use benchkit::replay::{DatasetSource, ReplayConfig, TargetConfig, WorkloadConfig};
    let server = MockServer::start().await;
    let backend = benchkit::Backend::init().unwrap();
    let tokenizer = benchkit::synth::default_model(&backend).unwrap();
    let mut http = config(&server, Endpoint::Completions, TIMEOUT);
    http.metrics = Some(ScrapeConfig { url: None, interval: Duration::from_millis(20) });
    let config = ReplayConfig {
        target: TargetConfig::Http(http),
        tokenizer: Some(tokenizer),
        model_id: None,
        isolation: Default::default(),
        workload: WorkloadConfig {
            dataset: DatasetSource::Synthetic { input_len: LengthDist::Fixed(8), output_len: LengthDist::Fixed(5) },
            num_prompts: 8,
            seed: 1,
            fixed_output_len: None,
            multi_turn: false,
        },
        // 8 requests over ~0.3 s: the 20 ms scrapes see the counters move.
        schedule: ScheduleConfig::new(Arrival::Constant { rate: 25.0 }),
        drive: Default::default(),
        slo: Default::default(),
        save_requests: None,
        cancel: None,
        telemetry: Default::default(),
        telemetry_pid: None,
        shard: None,
        check: Default::default(),
    };
    let result = config.clone().prepare(&backend).unwrap().run_async(&backend, |_| {}).await.unwrap();
    assert_eq!(result.summary.completed, 8);
    let m = result.server_metrics.as_ref().expect("scraped");
    assert_eq!(m.url, format!("{}/metrics", server.base_url()));
    assert_eq!(m.counter("mock:tokens_predicted_total"), Some(result.summary.total_output_tokens as f64));
    assert_eq!(result.summary.total_output_tokens, 40);
    assert!(m.scrapes >= 3, "{m:?}");
    assert_eq!(m.failures.len(), 1, "{m:?}");
    assert!(m.failures[0].error.starts_with("HTTP 500"), "{m:?}");
    assert_eq!(m.malformed_lines, ["this line is not a metric"]);
    let seen = &m.gauges["mock:requests_seen"];
    assert_eq!((seen.min, seen.last), (0.0, 8.0));
    assert_eq!(seen.points.len(), m.scrapes);
    // The client's own process was sampled; J per output token where energy is readable.
    let cpu = result.telemetry.cpu.value().expect("client process sampled");
    // An idle client may stay under one clock tick (10 ms) of CPU: its figures are there, and
    // its window spans the run.
    assert_eq!(cpu.pid, std::process::id());
    assert!(
        cpu.user_s >= 0.0 && result.telemetry.window.as_ref().unwrap().duration_s >= 0.25,
        "{:?}",
        result.telemetry
    );
    let json = serde_json::to_value(&result).unwrap();
    assert!(json["server_metrics"]["counters"]["mock:tokens_predicted_total"].as_f64() == Some(40.0));
    assert!(json["telemetry"]["gpu"]["unavailable"].is_string() || json["telemetry"]["gpu"]["devices"].is_array());

    // A server without metrics: every scrape fails, and the replay still succeeds.
    let mut http = HttpTargetConfig::new(server.base_url(), "mock-model");
    (http.endpoint, http.api_key_env) = (Endpoint::Completions, None);
    http.metrics =
        Some(ScrapeConfig { url: Some("http://127.0.0.1:9/metrics".into()), interval: Duration::from_secs(60) });
    let config = ReplayConfig { target: TargetConfig::Http(http), ..config };
    let result = config.prepare(&backend).unwrap().run_async(&backend, |_| {}).await.unwrap();
    assert_eq!(result.summary.completed, 8);
    let m = result.server_metrics.unwrap();
    assert_eq!((m.scrapes, m.failures.len()), (0, 2), "{m:?}");
    assert!(m.counters.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_lengths_are_checked_against_the_servers_tokenize() {
    use benchkit::replay::http::check_tokens;
    let server = MockServer::start().await;
    let cfg = config(&server, Endpoint::Completions, TIMEOUT);
    let agree = "hello world";
    let requests = vec![
        Request::text(0, agree, mock_openai::mock_token_count(agree) as u32, 4),
        Request::text(1, "abc", 1, 4),
        Request::text(2, agree, 11, 4), // the same prompt again: asked once
        Request::tokens(3, vec![1, 2, 3], 4),
        Request::text(4, "four", 9, 4),
    ];
    let t = check_tokens(&cfg, &requests, 1000).await;
    assert_eq!(t.endpoint.as_deref(), Some(format!("{}/tokenize", server.base_url()).as_str()));
    // The mock is vLLM-shaped: llama.cpp's `content` is refused, `prompt` is answered.
    assert_eq!(t.api.as_deref(), Some("vllm"), "{t:?}");
    assert_eq!((t.prompts_checked, t.disagreements, t.prompts_skipped, t.max_abs_diff), (3, 2, 1, 5), "{t:?}");
    assert!((t.mean_abs_diff - 7.0 / 3.0).abs() < 1e-9, "{t:?}");
    assert_eq!((t.examples[0].request_id, t.examples[0].client, t.examples[0].server), (1, 1, 3));
    assert!(t.unavailable.is_none() && t.stopped.is_none(), "{t:?}");

    let t = check_tokens(&cfg, &requests, 1).await;
    assert_eq!((t.prompts_checked, t.disagreements, t.prompts_skipped), (1, 0, 3), "the limit: {t:?}");
    let t = check_tokens(&cfg, &requests, 0).await;
    assert!(t.unavailable.as_deref().unwrap().contains("off"), "{t:?}");
    let asked = server.stats.tokenize_requests.load(Ordering::Relaxed);
    let t = check_tokens(&cfg, &requests[3..4], 1000).await;
    assert!(t.unavailable.as_deref().unwrap().contains("no single-text prompt"), "{t:?}");
    assert_eq!(server.stats.tokenize_requests.load(Ordering::Relaxed), asked, "nothing to ask");

    // A server without /tokenize, and no server at all: unavailable, not an error.
    server.stats.no_tokenize.store(true, Ordering::Relaxed);
    let t = check_tokens(&cfg, &requests, 1000).await;
    assert!(t.unavailable.as_deref().unwrap().starts_with("HTTP 404"), "{t:?}");
    assert_eq!(t.prompts_checked, 0);
    let gone = HttpTargetConfig { base_url: "http://127.0.0.1:9".into(), ..cfg };
    let t = check_tokens(&gone, &requests, 1000).await;
    assert!(t.unavailable.as_deref().unwrap().contains("connect"), "{t:?}");
}

/// A synthetic completions replay against `server` at `rate` req/s (constant), with a 20 ms
/// lag threshold: far above what a paced client on a busy 2-core machine shows, far below
/// what a client handed more than it can send does.
fn paced_replay(
    server: &MockServer,
    tokenizer: std::path::PathBuf,
    n: usize,
    rate: f64,
) -> benchkit::replay::ReplayConfig {
    use benchkit::replay::workload::{Arrival, LengthDist, ScheduleConfig};
    use benchkit::replay::{ClientCheckConfig, DatasetSource, ReplayConfig, TargetConfig, WorkloadConfig};
    let mut http = config(server, Endpoint::Completions, Duration::from_secs(30));
    http.metrics = None;
    // Bounded, so a flood queues for connections instead of overflowing the listen backlog.
    http.max_connections = Some(256);
    ReplayConfig {
        target: TargetConfig::Http(http),
        tokenizer: Some(tokenizer),
        model_id: None,
        isolation: Default::default(),
        workload: WorkloadConfig {
            dataset: DatasetSource::Synthetic { input_len: LengthDist::Fixed(4), output_len: LengthDist::Fixed(2) },
            num_prompts: n,
            seed: 1,
            fixed_output_len: None,
            multi_turn: false,
        },
        schedule: ScheduleConfig::new(Arrival::Constant { rate }),
        drive: Default::default(),
        slo: Default::default(),
        save_requests: None,
        cancel: None,
        telemetry: benchkit::telemetry::TelemetryConfig { enabled: false, ..Default::default() },
        telemetry_pid: None,
        shard: None,
        check: ClientCheckConfig { max_schedule_lag_ms: 20.0, ..ClientCheckConfig::default() },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_client_flags_itself_and_a_paced_one_does_not() {
    let server = MockServer::start().await;
    let backend = benchkit::Backend::init().unwrap();
    let tokenizer = benchkit::synth::default_model(&backend).unwrap();

    let paced = paced_replay(&server, tokenizer.clone(), 8, 25.0);
    let r = paced.prepare(&backend).unwrap().run_async(&backend, |_| {}).await.unwrap();
    assert_eq!(r.summary.completed, 8);
    let check = r.client_check.as_ref().expect("checked");
    assert!(r.invalid.is_none() && !check.saturated, "{check:?}");
    let cpu = check.client_cpu.expect("an http client's CPU is measured");
    assert_eq!(cpu.usable_cores, 2.min(std::thread::available_parallelism().unwrap().get()));
    assert!(cpu.wall_s >= 0.25 && cpu.fraction < 0.9, "{cpu:?}");
    assert_eq!(check.schedule_lag_parts.dispatch.count, 8);
    // Synthetic prompts are token ids: nothing to compare with /tokenize.
    assert!(check.tokens.unavailable.is_some(), "{:?}", check.tokens);

    // 20,000 requests due within 20 ms: no client sends 1,000,000 req/s, so they leave late,
    // and the run says its latencies are the client's.
    let flooded = paced_replay(&server, tokenizer, 20_000, 1e6);
    let r = flooded.prepare(&backend).unwrap().run_async(&backend, |_| {}).await.unwrap();
    assert_eq!(r.summary.completed, 20_000);
    let check = r.client_check.as_ref().expect("checked");
    let why = r.invalid.as_deref().expect("flagged");
    assert!(why.starts_with("client saturated: schedule-lag p99"), "{why}");
    assert!(check.saturated && check.schedule_lag_p99_ms > 20.0, "{check:?}");
    // The parts add up to the lag (each part's mean; histograms round within 0.1 %).
    let p = check.schedule_lag_parts;
    let sum = p.dispatch.mean_ms + p.task_start.mean_ms + p.target_wait.mean_ms;
    assert!((sum - r.summary.schedule_lag.mean_ms).abs() <= 0.01 * r.summary.schedule_lag.mean_ms + 0.01, "{p:?}");
    eprintln!("flooded: {why}; parts {p:?}; cpu {:?}", check.client_cpu);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["invalid"], why);
    assert_eq!(json["client_check"]["saturated"], true);

    // Stored, the flooded run is `invalid` with its reason (comparisons leave it out).
    let dir = std::env::temp_dir().join(format!("benchkit-saturated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite");
    let spec = db.to_str().unwrap();
    let mut w = benchkit::store::RunWriter::open(spec, None).unwrap();
    w.replay(&r, &[]).unwrap();
    w.finish(None).unwrap();
    let store = benchkit::store::Store::open_read_only(spec).unwrap();
    let entries = store.entries(&benchkit::store::Filter::all()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].record.status, "invalid");
    assert_eq!(entries[0].record.error.as_deref(), Some(why));
    std::fs::remove_dir_all(&dir).unwrap();
}
