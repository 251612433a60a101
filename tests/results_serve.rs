//! `benchkit results serve` end to end: the real binary over a SQLite store, a plain HTTP/1.1
//! client on loopback. The API key reaches the server only through its environment and never
//! comes back out of it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use benchkit::store::{Metric, RunMeta, Store, StoredRecord};
use serde_json::{json, Value};

const KEY_ENV: &str = "BENCHKIT_API_KEY";

/// A key no test data or path contains by accident.
fn test_key() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("serve-test-key-{}-{nanos:x}", std::process::id())
}

fn replay_meta() -> RunMeta {
    RunMeta {
        kind: "replay".into(),
        source: "benchkit".into(),
        label: None,
        started_at: "2026-01-01T00:00:00Z".into(),
        benchkit_version: Some("0.1.0".into()),
        build_commit: "0123456789abcdef".into(),
        build_number: 4242,
        machine: "cpu A".into(),
        host: None,
        status: "ok".into(),
        error: None,
        provenance: json!({}),
    }
}

fn replay(model: &str, ttft: &[f64]) -> StoredRecord {
    let metrics = [
        ("ttft", Metric::from_samples("ms", false, ttft.to_vec())),
        ("rps", Metric::summary("req/s", true, 1000.0 / ttft[0], None, 1)),
    ];
    let record = StoredRecord::new("replay", "replay", model, [("request_rate", "4")], metrics);
    StoredRecord { result: json!({ "model_id": model }), ..record }
}

/// Stores one run with one replay record of `model`; returns the run id.
fn add_run(store: &str, model: &str, ttft: &[f64]) -> i64 {
    let s = Store::open(store).unwrap();
    let run = s.insert_run(&replay_meta()).unwrap();
    s.insert_record(run, &replay(model, ttft)).unwrap();
    run.0
}

/// The server process, killed on drop; everything it printed, on both streams.
struct Server {
    child: Child,
    addr: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(store: &str, key: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_benchkit"))
            .args(["results", "serve", "--store", store, "--listen", "127.0.0.1:0"])
            .env(KEY_ENV, key)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, tx) in [(Box::new(stdout) as Box<dyn Read + Send>, Some(tx)), (Box::new(stderr), None)] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    output.lock().unwrap().push_str(&format!("{line}\n"));
                    if let (Some(tx), Some(addr)) = (&tx, line.strip_prefix("listening on http://")) {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("no `listening on` line from the server: {}", output.lock().unwrap());
            }
        };
        Server { child, addr, output }
    }

    /// `GET path` with the given `x-api-key` (none when `None`): status and JSON body.
    fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let (status, body) = http_get(self.addr, path, key);
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("GET {path}: {status}, not JSON ({e}): {}", String::from_utf8_lossy(&body)));
        (status, json)
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

/// A minimal HTTP/1.1 client: one request per connection (`Connection: close`), a body by
/// `Content-Length`, chunked, or until the close.
fn http_get(addr: SocketAddr, path: &str, key: Option<&str>) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n");
    if let Some(k) = key {
        req.push_str(&format!("x-api-key: {k}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if headers.get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        dechunk(&body)
    } else if let Some(n) = headers.get("content-length") {
        let n: usize = n.parse().unwrap();
        assert_eq!(body.len(), n, "GET {path}: body shorter than its Content-Length");
        body
    } else {
        body
    };
    if status == 200 || status >= 400 {
        assert_eq!(headers.get("content-type").map(String::as_str), Some("application/json"), "GET {path}");
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// The names in one metric's ranking, best first.
fn ranked(v: &Value, metric: &str) -> Vec<String> {
    let data = v["data"].as_array().unwrap_or_else(|| panic!("no data array: {v}"));
    let set = data.iter().find_map(|d| d.get(metric)).unwrap_or_else(|| panic!("no {metric}: {v}"));
    set.as_array().unwrap().iter().map(|r| r["llm_name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn rankings_runs_and_records_behind_the_key_cached_until_the_store_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("results.db").to_string_lossy().into_owned();
    let slow = add_run(&store, "slow-model", &[200.0, 220.0]);
    let fast = add_run(&store, "fast-model", &[20.0, 40.0]);
    let key = test_key();
    let server = Server::start(&store, &key);

    // Every endpoint, known or not, wants the key.
    let wrong = format!("{key}x");
    for path in [
        "/api/v1/benchmarks/rankings",
        "/api/v1/benchmarks/rankings/ttft",
        "/api/v1/runs",
        &format!("/api/v1/runs/{fast}"),
        "/api/v1/records",
        "/api/v1/no-such-endpoint",
    ] {
        let (status, body) = server.get(path, None);
        assert_eq!(status, 401, "GET {path} without a key: {body}");
        assert_eq!(body["error"], "missing x-api-key header");
        let (status, body) = server.get(path, Some(&wrong));
        assert_eq!(status, 401, "GET {path} with a wrong key: {body}");
        assert_eq!(body["error"], "invalid API key");
        assert!(!body.to_string().contains(&key));
    }
    let get = |path: &str| server.get(path, Some(&key));

    // llm-benchmark's shape: one object per metric, each a list of {llm_name, mean_value}.
    let (status, all) = get("/api/v1/benchmarks/rankings");
    assert_eq!(status, 200, "{all}");
    let data = all["data"].as_array().unwrap();
    assert_eq!(data.len(), 8);
    assert_eq!(data[0].as_object().unwrap().keys().collect::<Vec<_>>(), ["ttft"]);
    assert_eq!(ranked(&all, "ttft"), ["fast-model", "slow-model"]);
    assert_eq!(all["data"][0]["ttft"][0]["mean_value"], 30.0);
    assert_eq!(all["data"][0]["ttft"][1]["mean_value"], 210.0);
    assert_eq!(all["data"][0]["ttft"][0]["n_runs"], 1);
    assert_eq!(ranked(&all, "rps"), ["fast-model", "slow-model"], "throughput: higher first");
    assert_eq!(ranked(&all, "pp"), Vec::<String>::new());

    let (status, ttft) = get("/api/v1/benchmarks/rankings/ttft");
    assert_eq!(status, 200);
    assert_eq!(ttft["data"].as_array().unwrap().len(), 1);
    assert_eq!(ttft["data"][0]["ttft"], all["data"][0]["ttft"]);
    let (status, by_machine) = get("/api/v1/benchmarks/rankings/ttft?by=machine");
    assert_eq!((status, ranked(&by_machine, "ttft")), (200, vec!["cpu A".to_string()]));
    let (status, filtered) = get("/api/v1/benchmarks/rankings/ttft?filter=model%3Dslow-model");
    assert_eq!((status, ranked(&filtered, "ttft")), (200, vec!["slow-model".to_string()]));
    let (status, body) = get("/api/v1/benchmarks/rankings/latency");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("unknown metric"));
    assert_eq!(get("/api/v1/benchmarks/rankings?by=gpu").0, 400);
    assert_eq!(get("/api/v1/records?filter=novalue").0, 400);
    assert_eq!(get("/api/v1/no-such-endpoint").0, 404);

    let (status, runs) = get("/api/v1/runs");
    assert_eq!(status, 200);
    let ids: Vec<i64> = runs["data"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [slow, fast]);
    assert_eq!(runs["data"][0]["build_commit"], "0123456789abcdef");
    assert_eq!(runs["data"][0]["n_records"], 1);
    let (status, run) = get(&format!("/api/v1/runs/{fast}"));
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["run"]["id"], fast);
    assert_eq!(run["records"].as_array().unwrap().len(), 1);
    assert_eq!(run["records"][0]["model"], "fast-model");
    assert_eq!(run["records"][0]["seq"], 0);
    assert_eq!(run["records"][0]["metrics"]["ttft"]["samples"], json!([20.0, 40.0]));
    assert_eq!(get("/api/v1/runs/999999").0, 404);
    assert_eq!(get("/api/v1/runs/abc").0, 404);
    let (status, records) = get("/api/v1/records?filter=model%3Dslow-model");
    assert_eq!(status, 200);
    let records = records["data"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["record"]["model"], "slow-model");
    assert_eq!(records[0]["run"]["id"], slow);
    assert_eq!(get("/api/v1/records").1["data"].as_array().unwrap().len(), 2);

    // Cached answers are the same answers; a write to the store, by another process's
    // library, shows in the next one.
    assert_eq!(get("/api/v1/benchmarks/rankings").1, all);
    let fastest = add_run(&store, "fastest-model", &[5.0, 7.0]);
    let (status, after) = get("/api/v1/benchmarks/rankings");
    assert_eq!(status, 200);
    assert_ne!(after, all);
    assert_eq!(ranked(&after, "ttft"), ["fastest-model", "fast-model", "slow-model"]);
    assert_eq!(ranked(&get("/api/v1/benchmarks/rankings/ttft").1, "ttft")[0], "fastest-model");
    assert_eq!(get("/api/v1/runs").1["data"].as_array().unwrap().len(), 3);
    assert_eq!(get(&format!("/api/v1/runs/{fastest}")).0, 200);

    let output = server.output();
    drop(server);
    assert!(output.contains("listening on http://127.0.0.1:"), "{output}");
    assert!(!output.contains(&key), "the server printed its API key: {output}");
}

#[test]
fn refusals_to_start_never_show_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = test_key();
    let run = |args: &[&str], key: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_benchkit"));
        c.args(["results", "serve"]).args(args).env_remove(KEY_ENV).env_remove("BENCHKIT_STORE");
        if let Some(k) = key {
            c.env(KEY_ENV, k);
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let missing = dir.path().join("missing.db").to_string_lossy().into_owned();
    // No store there: a read-only server does not create one.
    let (ok, out) = run(&["--store", &missing, "--listen", "127.0.0.1:0"], Some(&key));
    assert!(!ok && out.contains("no store at"), "{out}");
    assert!(!out.contains(&key), "{out}");
    assert!(!std::path::Path::new(&missing).exists());
    // No key at all: refused, saying which variable to set.
    let store = dir.path().join("results.db").to_string_lossy().into_owned();
    add_run(&store, "m", &[1.0]);
    let (ok, out) = run(&["--store", &store, "--listen", "127.0.0.1:0"], None);
    assert!(!ok && out.contains(KEY_ENV) && out.contains("--no-auth"), "{out}");
    // A remote address without --allow-remote.
    let (ok, out) = run(&["--store", &store, "--listen", "0.0.0.0:0"], Some(&key));
    assert!(!ok && out.contains("not a loopback address"), "{out}");
    assert!(!out.contains(&key), "{out}");
}
