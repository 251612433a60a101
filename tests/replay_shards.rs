//! Load from many processes: the real `benchkit` binary run as 2 shards of one seeded
//! schedule against a loopback OpenAI-compatible server, started together at an agreed time,
//! then `benchkit replay merge`, and one process on the same schedule for comparison.

#[path = "support/mock_openai.rs"]
mod mock_openai;

use benchkit::replay::metrics::{read_records, Aggregator, SloConfig, Summary};
use benchkit::replay::shard::{merged_records, read_shard, shared_origin, ShardFile};
use benchkit::replay::{ReplayResult, RequestRecord};
use mock_openai::MockServer;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 60 measured requests and 2 warmups at a constant 200 req/s, synthetic prompts.
const SCHEDULE: &str = "--dataset synthetic --synthetic-input 16 --synthetic-output 6 --num-prompts 60 --warmup 2 \
                        --request-rate 200 --constant-rate --seed 7 --no-server-metrics";

fn benchkit(base_url: &str, tokenizer: &Path, extra: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchkit"));
    c.args(["replay", "--target", "http", "--base-url", base_url, "-m"]).arg(tokenizer);
    c.args(SCHEDULE.split_whitespace()).args(extra.split_whitespace());
    c.env_remove("BENCHKIT_STORE");
    c
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} exited {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

fn result(path: &Path) -> ReplayResult {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn by_id(records: Vec<RequestRecord>) -> BTreeMap<u64, RequestRecord> {
    records.into_iter().map(|r| (r.id, r)).collect()
}

/// Summaries equal but for the standard deviations (and TPOT's mean, a sum of fractions),
/// which a merge of moments reproduces to rounding only.
fn assert_equal_summaries(merged: &Summary, union: &Summary) {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-9);
    let (mut m, mut u) = (merged.clone(), union.clone());
    for name in Summary::METRICS {
        let (a, b) = (merged.metric(name).unwrap(), union.metric(name).unwrap());
        assert!(close(a.std_ms, b.std_ms) && close(a.mean_ms, b.mean_ms), "{name}: {a:?} vs {b:?}");
    }
    for s in [&mut m, &mut u] {
        for d in [&mut s.ttft, &mut s.tpot, &mut s.itl, &mut s.e2el, &mut s.ttft_from_scheduled] {
            (d.std_ms, d.mean_ms) = (0.0, 0.0);
        }
        for d in [&mut s.e2el_from_scheduled, &mut s.schedule_lag] {
            (d.std_ms, d.mean_ms) = (0.0, 0.0);
        }
    }
    assert_eq!(m, u);
}

#[test]
fn two_shards_merge_into_the_single_process_result() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start());
    let url = server.base_url();
    let tokenizer = benchkit::synth::default_model(&benchkit::Backend::init().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");

    // The agreed start leaves the two processes time to load the tokenizer on a busy machine.
    let start_at = SystemTime::now() + Duration::from_secs(12);
    let start_s = start_at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let flags = |i: u32| format!("--shard {i}/2 --shard-dir {} --start-at {start_s:.6}", shards.display());
    let children: Vec<_> = (0..2).map(|i| benchkit(&url, &tokenizer, &flags(i)).output_async()).collect::<Vec<_>>();
    for (i, child) in children.into_iter().enumerate() {
        ok(child.wait_with_output().unwrap(), &format!("shard {i}"));
    }
    let single_path = dir.path().join("single.json");
    let single_records = dir.path().join("single.jsonl");
    let single_flags = format!("--save-result {} --save-requests {}", single_path.display(), single_records.display());
    ok(benchkit(&url, &tokenizer, &single_flags).output().unwrap(), "single process");
    let merged_path = dir.path().join("merged.json");
    let merge = Command::new(env!("CARGO_BIN_EXE_benchkit"))
        .args(["replay", "merge"])
        .arg(&shards)
        .arg("--save-result")
        .arg(&merged_path)
        .output()
        .unwrap();
    let merge = ok(merge, "merge");
    assert!(String::from_utf8_lossy(&merge.stderr).contains("merged 2 shards"));

    let (merged, single) = (result(&merged_path), result(&single_path));
    let files: Vec<ShardFile> =
        (0..2).map(|i| read_shard(shards.join(format!("shard-{i}-of-2.json"))).unwrap()).collect();
    assert_eq!(files[0].schedule_id, files[1].schedule_id);
    // Histograms in HdrHistogram's interchange encoding: base64 of V2 + DEFLATE ("HISTFAA...").
    for f in &files {
        for (name, d) in &f.aggregator.metrics {
            assert!(d.histogram.starts_with("HISTFAA"), "{name}: {}", d.histogram);
        }
    }

    // Counts and tokens: those of the one process.
    let (m, s) = (&merged.summary, &single.summary);
    assert_eq!((m.completed, m.failed, m.warmup_excluded), (60, 0, 2));
    assert_eq!((m.completed, m.failed, m.warmup_excluded), (s.completed, s.failed, s.warmup_excluded));
    assert_eq!((m.total_input_tokens, m.total_output_tokens), (s.total_input_tokens, s.total_output_tokens));
    assert_eq!(m.total_output_tokens, 60 * 6);
    assert_eq!(m.output_tokens_source, s.output_tokens_source);
    assert_eq!((merged.num_prompts, merged.request_rate), (single.num_prompts, single.request_rate));

    // The shards sent exactly the one process's schedule: every request once, at its time,
    // conversation k (here request k) from shard k % 2.
    let shard_records: Vec<BTreeMap<u64, RequestRecord>> =
        (0..2).map(|i| by_id(read_records(shards.join(format!("shard-{i}-of-2.requests.jsonl"))).unwrap())).collect();
    let single_records = by_id(read_records(&single_records).unwrap());
    assert_eq!(single_records.len(), 62);
    for (id, one) in &single_records {
        let shard = &shard_records[(*id % 2) as usize];
        let r = shard.get(id).unwrap_or_else(|| panic!("request {id} not in shard {}", id % 2));
        assert_eq!((r.scheduled_ns, r.warmup, r.output_tokens), (one.scheduled_ns, one.warmup, one.output_tokens));
    }
    assert_eq!(shard_records[0].len() + shard_records[1].len(), 62);

    // The merged histograms and counters are those of one aggregator over both shards' records.
    let origin = shared_origin(&files).unwrap();
    assert_eq!(origin, files[0].start_at_unix_ns.unwrap());
    let duration_ns = files.iter().map(|f| f.offset_ns(origin) + f.duration_ns).max().unwrap();
    let mut union = Aggregator::new(SloConfig::default());
    shard_records.iter().flat_map(|s| s.values()).for_each(|r| union.record(r));
    assert_equal_summaries(&merged.summary, &union.finish(Duration::from_nanos(duration_ns)));

    // The duration runs from the shared start to the last end: past the last arrival, and
    // past every shard's own end.
    let last_arrival = single_records.values().map(|r| r.scheduled_ns).max().unwrap() as f64 / 1e9;
    assert!((last_arrival - 61.0 / 200.0).abs() < 1e-6, "{last_arrival}");
    assert!(m.duration > last_arrival && s.duration > last_arrival, "{} {}", m.duration, s.duration);
    for f in &files {
        assert!(m.duration * 1e9 >= (f.offset_ns(origin) + f.duration_ns) as f64 - 1.0);
        // Each shard woke at the agreed time, not before it.
        assert!(f.origin_unix_ns >= origin);
    }
    // The shards' records on the shared clock: each record moved by its shard's start lag.
    let pairs: Vec<_> = files.iter().map(|f| (shards.join(format!("{}.json", f.shard.stem())), f.clone())).collect();
    let on_shared_clock = by_id(merged_records(&pairs).unwrap());
    assert_eq!(on_shared_clock.len(), 62);
    for (id, r) in &on_shared_clock {
        let own = &shard_records[(*id % 2) as usize][id];
        let lag = files[(*id % 2) as usize].offset_ns(origin);
        assert_eq!((r.sent_ns, r.end_ns), (own.sent_ns + lag, own.end_ns + lag));
    }
    let listed = merged.provenance.settings["shards"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(merged.provenance.settings["merge"]["aligned_by"], "the agreed start (--start-at)");
    drop(server);
}

#[test]
fn late_shards_and_incomplete_merges_fail_clearly() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start());
    let tokenizer = benchkit::synth::default_model(&benchkit::Backend::init().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    // A start that has passed: the shard refuses to send its part of the load late.
    let past = format!("--shard 0/2 --shard-dir {} --start-at 2001-01-01T00:00:00Z", shards.display());
    let out = benchkit(&server.base_url(), &tokenizer, &past).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agreed start time passed"), "{err}");
    // One shard of two: the merge names the missing one.
    let one = format!("--shard 1/2 --shard-dir {}", shards.display());
    ok(benchkit(&server.base_url(), &tokenizer, &one).output().unwrap(), "shard 1");
    let out = Command::new(env!("CARGO_BIN_EXE_benchkit")).args(["replay", "merge"]).arg(&shards).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shards [0] of 2 are missing"), "{err}");
    // In-process engines are not shards of one system under test.
    let out = Command::new(env!("CARGO_BIN_EXE_benchkit"))
        .args(["replay", "--target", "inproc", "--in-process", "-m"])
        .arg(&tokenizer)
        .args(["--dataset", "synthetic", "--num-prompts", "2", "--shard", "0/2", "--shard-dir"])
        .arg(&shards)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard needs an http target"));
    drop(server);
}

/// `Command::spawn` with the output captured, for processes that must run side by side.
trait SpawnCaptured {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnCaptured for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}
