//! End to end against a real llama.cpp server (llama-server, built from the same llama.cpp
//! version by scripts/build-reference-tools.sh) on loopback with the real gemma model: the
//! output-token totals benchkit reports equal the server's own counters.

use benchkit::replay::http::{Endpoint, HttpTarget, HttpTargetConfig};
use benchkit::replay::metrics::{Aggregator, SloConfig};
use benchkit::replay::workload::{
    load_sharegpt, schedule, sharegpt_default_path, Arrival, SampleConfig, ScheduleConfig,
};
use benchkit::replay::{drive, DriveConfig, Target, TokenCountSource};
use benchkit::{Backend, Model, ModelParams};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_match_llama_server_counters() {
    let model_path = benchkit_suite::test_model();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        Command::new(benchkit_suite::llama_server())
            .args(["-m", model_path.to_str().unwrap(), "-c", "4096", "-np", "2", "-t", "2", "--metrics"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-server"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !http_get(port, "/health").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(Instant::now() < deadline, "llama-server did not become healthy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let backend = Backend::init().unwrap();
    let model = Arc::new(Model::load(&backend, &model_path, &ModelParams::default()).unwrap());
    let load = load_sharegpt(&sharegpt_default_path().unwrap()).unwrap();
    let counter = {
        let m = model.clone();
        move |t: &str| m.tokenize(t, false).unwrap().len()
    };
    let cfg = SampleConfig { fixed_output_len: Some(16), max_prompt_len: 256, ..SampleConfig::new(12, 7) };
    let mut requests = load.sample(&counter, &cfg).unwrap().requests;
    schedule(&mut requests, &ScheduleConfig::new(Arrival::Poisson { rate: 8.0 }).seed(7).warmup(2)).unwrap();

    let tok: Arc<dyn Fn(&str) -> usize + Send + Sync> = Arc::new(counter);
    let config = HttpTargetConfig {
        endpoint: Endpoint::Completions,
        ignore_eos: true,
        ..HttpTargetConfig::new(format!("http://127.0.0.1:{port}"), "gemma")
    };
    // The prompt lengths benchkit counted with the same model agree with llama-server's own
    // /tokenize (llama.cpp's request shape, no special tokens).
    let tokens = benchkit::replay::http::check_tokens(&config, &requests, 1000).await;
    assert_eq!(tokens.api.as_deref(), Some("llama.cpp"), "{tokens:?}");
    assert_eq!(tokens.endpoint, Some(format!("http://127.0.0.1:{port}/tokenize")));
    assert_eq!((tokens.prompts_checked, tokens.disagreements, tokens.max_abs_diff), (12, 0, 0), "{tokens:?}");
    assert!(tokens.unavailable.is_none() && tokens.stopped.is_none(), "{tokens:?}");
    let target: Arc<dyn Target> = Arc::new(HttpTarget::new(config, Some(tok)).unwrap());
    let mut agg = Aggregator::new(SloConfig::default());
    let mut all_output = 0u64;
    let mut records = Vec::new();
    drive(target, requests, &DriveConfig { max_concurrency: Some(2), ..Default::default() }, |r| {
        all_output += u64::from(r.output_tokens);
        agg.record(&r);
        records.push(r);
    })
    .await;
    assert_eq!(records.len(), 12);
    for r in &records {
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.output_tokens, 16);
        assert_eq!(r.output_tokens_source, TokenCountSource::ServerUsage);
        assert!(r.first_token_ns.is_some());
    }
    let summary = serde_json::to_value(agg.finish(Duration::from_secs(1))).unwrap();
    assert_eq!(summary["completed"], 10); // 2 warmup requests excluded
    assert_eq!(summary["total_output_tokens"], 160);

    let body = http_get(port, "/metrics").unwrap();
    // The server counts every request it served, warmup included.
    assert_eq!(metric(&body, "llamacpp:tokens_predicted_total") as u64, all_output);

    // A whole replay scrapes the counters itself, and samples the server's process.
    use benchkit::replay::workload::LengthDist;
    use benchkit::replay::{DatasetSource, ReplayConfig, TargetConfig, WorkloadConfig};
    let mut http = HttpTargetConfig::new(format!("http://127.0.0.1:{port}"), "gemma");
    http.endpoint = Endpoint::Completions;
    let config = ReplayConfig {
        target: TargetConfig::Http(http),
        tokenizer: Some(model_path.clone()),
        model_id: None,
        isolation: Default::default(),
        workload: WorkloadConfig {
            dataset: DatasetSource::Synthetic { input_len: LengthDist::Fixed(32), output_len: LengthDist::Fixed(12) },
            num_prompts: 6,
            seed: 3,
            fixed_output_len: None,
            multi_turn: false,
        },
        schedule: ScheduleConfig::new(Arrival::Poisson { rate: 6.0 }).seed(3),
        drive: DriveConfig { max_concurrency: Some(2), ..Default::default() },
        slo: Default::default(),
        save_requests: None,
        cancel: None,
        telemetry: Default::default(),
        telemetry_pid: Some(_server.0.id()),
        shard: None,
        check: Default::default(),
    };
    let result = config.prepare(&backend).unwrap().run_async(&backend, |_| {}).await.unwrap();
    assert_eq!(result.summary.completed, 6);
    let m = result.server_metrics.as_ref().expect("scraped");
    assert!(m.failures.is_empty(), "{m:?}");
    assert_eq!(m.counter("llamacpp:tokens_predicted_total"), Some(result.summary.total_output_tokens as f64), "{m:?}");
    assert_eq!(result.summary.total_output_tokens, 72);
    assert!(m.counter("llamacpp:prompt_tokens_total").unwrap() > 0.0, "{m:?}");
    assert!(m.counter("llamacpp:n_decode_total").unwrap() > 0.0, "{m:?}");
    assert!(m.gauges.contains_key("llamacpp:requests_processing"), "{m:?}");
    let cpu = result.telemetry.cpu.value().expect("the server process was sampled");
    assert_eq!(cpu.pid, _server.0.id());
    assert!(cpu.user_s > 0.0 && cpu.nonvoluntary_ctxt_switches + cpu.voluntary_ctxt_switches > 0, "{cpu:?}");
    eprintln!(
        "server metrics: {} scrapes, tokens_predicted_total +{} = benchkit's {}; server CPU {:.2} s",
        m.scrapes,
        m.counter("llamacpp:tokens_predicted_total").unwrap(),
        result.summary.total_output_tokens,
        cpu.user_s + cpu.system_s
    );
}
