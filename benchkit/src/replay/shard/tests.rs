use super::*;
use crate::replay::metrics::{Aggregator, SloConfig};
use crate::replay::workload::{Arrival, Limit};
use crate::replay::{DatasetSource, RequestRate, RequestRecord, TokenCountSource};

fn requests() -> Vec<Request> {
    // Conversations a (two turns), b, c (two turns), d, e, in schedule order.
    let r = |id, conv: &str, turn| Request::text(id, format!("q{id}"), 4, 8).in_conversation(conv, turn).at(id * 10);
    vec![r(0, "a", 0), r(1, "a", 1), r(2, "b", 0), r(3, "c", 0), r(4, "c", 1), r(5, "d", 0), r(6, "e", 0)]
}

fn workload() -> WorkloadConfig {
    WorkloadConfig {
        dataset: DatasetSource::ShareGpt { path: Some("/here/sg.json".into()) },
        num_prompts: 5,
        seed: 1,
        fixed_output_len: None,
        multi_turn: true,
    }
}

fn schedule() -> ScheduleConfig {
    ScheduleConfig { arrival: Arrival::Constant { rate: 10.0 }, seed: 1, warmup: 0, limit: Limit::default() }
}

#[test]
fn specs_parse_and_name_their_files() {
    let s: ShardSpec = "2/5".parse().unwrap();
    assert_eq!((s, s.to_string(), s.stem()), (ShardSpec { index: 2, count: 5 }, "2/5".into(), "shard-2-of-5".into()));
    for bad in ["5/5", "1", "x/2", "0/0", "1/-2", ""] {
        let e = bad.parse::<ShardSpec>().unwrap_err().to_string();
        assert!(e.contains("shard"), "{bad}: {e}");
    }
    assert_eq!(unix_ns(parse_start_at("1700000000").unwrap()), 1_700_000_000_000_000_000);
    assert_eq!(unix_ns(parse_start_at("2023-11-14T23:13:20.125+01:00").unwrap()), 1_700_000_000_125_000_000);
    for bad in ["soon", "-1", "inf", "2023-13-01T00:00:00Z"] {
        assert!(parse_start_at(bad).is_err(), "{bad}");
    }
}

#[test]
fn conversation_k_goes_to_shard_k_mod_n_whole() {
    let ids = |spec| slice(requests(), spec).iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(ShardSpec { index: 0, count: 2 }), vec![0, 1, 3, 4, 6]);
    assert_eq!(ids(ShardSpec { index: 1, count: 2 }), vec![2, 5]);
    assert_eq!(ids(ShardSpec { index: 2, count: 3 }), vec![3, 4]);
    // Every request in exactly one shard, with its scheduled time.
    let mut all: Vec<Request> = (0..3).flat_map(|i| slice(requests(), ShardSpec { index: i, count: 3 })).collect();
    all.sort_by_key(|r| r.id);
    assert_eq!(all, requests());
    assert_eq!(slice(requests(), ShardSpec { index: 0, count: 1 }), requests());
}

#[test]
fn identity_covers_the_schedule_and_the_split_but_not_the_path() {
    let id = |reqs: &[Request], w: &WorkloadConfig, n| schedule_identity(reqs, w, &schedule(), n);
    let base = id(&requests(), &workload(), 2);
    assert_eq!(base.len(), 64);
    assert_eq!(base, id(&requests(), &workload(), 2));
    let moved =
        WorkloadConfig { dataset: DatasetSource::ShareGpt { path: Some("/there/sg.json".into()) }, ..workload() };
    assert_eq!(base, id(&requests(), &moved, 2));
    assert_ne!(base, id(&requests(), &workload(), 3));
    assert_ne!(base, id(&requests(), &WorkloadConfig { seed: 2, ..workload() }, 2));
    let mut later = requests();
    later[3].scheduled_ns += 1;
    assert_ne!(base, id(&later, &workload(), 2));
    let mut other_text = requests();
    other_text[0].messages[0].content.push('!');
    assert_ne!(base, id(&other_text, &workload(), 2));
}

fn record(id: u64, sent_ns: u64, e2e_ns: u64) -> RequestRecord {
    RequestRecord {
        id,
        conversation_id: format!("c{id}"),
        turn: 0,
        warmup: id == 0,
        scheduled_ns: sent_ns,
        sent_ns,
        first_token_ns: Some(sent_ns + e2e_ns / 3),
        itl_ns: vec![e2e_ns / 9; 2],
        end_ns: sent_ns + e2e_ns,
        input_tokens: 4,
        output_tokens: 3,
        output_tokens_source: TokenCountSource::ServerUsage,
        failure: None,
        text: None,
    }
}

fn result() -> ReplayResult {
    ReplayResult {
        summary: Default::default(),
        backend: "http:x".into(),
        model_id: "m".into(),
        tokenizer_id: "t".into(),
        num_prompts: 40,
        request_rate: RequestRate::PerSecond(20.0),
        burstiness: 1.0,
        max_concurrency: Some(3),
        date: "20261205-200000".into(),
        telemetry: Default::default(),
        server_metrics: None,
        client_check: None,
        invalid: None,
        provenance: crate::provenance::test_provenance(),
    }
}

/// Shard files for `count` shards of 41 records; shard i's clock starts `i` ms after the
/// shared origin 1e18 ns, and each record is 50 ms after the previous on the shared clock.
fn shard_files_for(count: u32, start_at: Option<u64>) -> (Vec<(PathBuf, ShardFile)>, Aggregator) {
    let origin = 1_000_000_000_000_000_000u64;
    let mut whole = Aggregator::new(SloConfig::default());
    let mut files = Vec::new();
    for index in 0..count {
        let offset = u64::from(index) * 1_000_000;
        let mut agg = Aggregator::new(SloConfig::default());
        for id in (0..41u64).filter(|k| k % u64::from(count) == u64::from(index)) {
            let shared = record(id, id * 50_000_000, 1_000_000 + id * 7_777);
            whole.record(&shared);
            // The shard's own clock runs `offset` behind the shared one.
            let own = RequestRecord {
                sent_ns: shared.sent_ns - offset.min(shared.sent_ns),
                scheduled_ns: shared.scheduled_ns - offset.min(shared.scheduled_ns),
                first_token_ns: shared.first_token_ns.map(|t| t - offset.min(shared.sent_ns)),
                end_ns: shared.end_ns - offset.min(shared.sent_ns),
                ..shared
            };
            agg.record(&own);
        }
        let duration_ns = agg.span_ns().map_or(0, |(_, end)| end + 10);
        let file = ShardFile {
            format: FORMAT.into(),
            shard: ShardSpec { index, count },
            schedule_id: "abc".into(),
            start_at_unix_ns: start_at,
            origin_unix_ns: origin + offset,
            duration_ns,
            records_file: None,
            aggregator: agg.state().unwrap(),
            result: result(),
        };
        files.push((PathBuf::from(format!("shard-{index}-of-{count}.json")), file));
    }
    (files, whole)
}

#[test]
fn merged_files_equal_one_aggregator_from_the_shared_start() {
    for start_at in [None, Some(1_000_000_000_000_000_000u64)] {
        let (mut files, whole) = shard_files_for(3, start_at);
        files.reverse();
        let merged = merge_files(files).unwrap();
        // The latest end on the shared clock: record 40 at 2 s + its latency, plus 10 ns.
        let last_end = 40 * 50_000_000 + 1_000_000 + 40 * 7_777 + 10;
        let d = Duration::from_nanos(last_end);
        let mut want = whole.finish(d);
        // Offsets are whole ms and the latencies integers: identical to the last bit but for
        // the variance, which agrees to rounding.
        for name in crate::replay::metrics::Summary::METRICS {
            let (m, w) = (merged.summary.metric(name).unwrap(), want.metric(name).unwrap());
            assert!((m.std_ms - w.std_ms).abs() <= 1e-9 * w.std_ms.max(1.0), "{name}");
        }
        let mut got = merged.summary.clone();
        for s in [&mut got, &mut want] {
            for m in [&mut s.ttft, &mut s.tpot, &mut s.itl, &mut s.e2el] {
                m.std_ms = 0.0;
            }
            for m in [&mut s.ttft_from_scheduled, &mut s.e2el_from_scheduled, &mut s.schedule_lag] {
                m.std_ms = 0.0;
            }
        }
        assert_eq!(got, want);
        assert_eq!((merged.summary.completed, merged.summary.warmup_excluded), (40, 1));
        assert_eq!(merged.max_concurrency, Some(9));
        let shards = merged.provenance.settings["shards"].as_array().unwrap();
        assert_eq!(shards.iter().map(|s| s["index"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(shards[2]["start_lag_ms"], 2.0);
        assert_eq!(merged.provenance.settings["merge"]["first_sent_s"], 0.0);
    }
}

#[test]
fn missing_duplicate_and_foreign_shards_are_refused() {
    let (files, _) = shard_files_for(3, None);
    let without = |i: usize| files.iter().enumerate().filter(|(k, _)| *k != i).map(|(_, f)| f.clone()).collect();
    match merge_files(without(1)) {
        Err(ShardError::Missing { missing, count }) => assert_eq!((missing, count), (vec![1], 3)),
        other => panic!("{other:?}"),
    }
    let mut twice = files.clone();
    twice.push((PathBuf::from("copy.json"), files[2].1.clone()));
    assert!(matches!(merge_files(twice), Err(ShardError::Duplicate { index: 2, .. })));
    let mut foreign = files.clone();
    foreign[1].1.schedule_id = "def".into();
    assert!(matches!(merge_files(foreign), Err(ShardError::ScheduleMismatch { .. })));
    let mut split = files.clone();
    split[2].1.shard = ShardSpec { index: 2, count: 4 };
    assert!(matches!(merge_files(split), Err(ShardError::CountMismatch { .. })));
    let mut clocks = files.clone();
    clocks[0].1.start_at_unix_ns = Some(5);
    assert!(matches!(merge_files(clocks), Err(ShardError::StartMismatch { .. })));
    let mut slo = files.clone();
    slo[1].1.aggregator.slo.ttft_ms = Some(1.0);
    assert!(matches!(merge_files(slo), Err(ShardError::Merge { .. })));
    let mut spoiled = files.clone();
    spoiled[1].1.aggregator.completed += 1;
    assert!(matches!(merge_files(spoiled), Err(ShardError::Corrupt { .. })));
    assert!(matches!(merge_files(Vec::new()), Err(ShardError::NoShards { .. })));
}

#[test]
fn directories_and_files_are_read_with_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = shard_files_for(2, None);
    for (name, f) in &files {
        std::fs::write(dir.path().join(name), serde_json::to_vec(f).unwrap()).unwrap();
    }
    std::fs::write(dir.path().join("shard-0-of-2.requests.jsonl"), "").unwrap();
    std::fs::write(dir.path().join("notes.json"), "{}").unwrap();
    let found = shard_files(&[dir.path()]).unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(merge(&[dir.path()]).unwrap().summary.completed, 40);
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(merge(&[empty.path()]), Err(ShardError::NoShards { .. })));
    assert!(matches!(merge(&[dir.path().join("absent.json")]), Err(ShardError::Io { .. })));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"format\": \"benchkit-replay-shard/1\", \"shard\": ").unwrap();
    assert!(matches!(read_shard(&bad), Err(ShardError::Json { .. })));
    std::fs::write(&bad, "{\"format\": \"benchkit-replay-shard/9\"}").unwrap();
    assert!(matches!(read_shard(&bad), Err(ShardError::Format { found, .. }) if found.ends_with("/9")));
    // A histogram that is not one: the file is named in the error.
    let mut f = files[0].1.clone();
    f.aggregator.metrics.get_mut("e2el").unwrap().histogram = "SElTVA==".into();
    std::fs::write(&bad, serde_json::to_vec(&f).unwrap()).unwrap();
    let e = merge(&[bad.clone(), dir.path().join(&files[1].0)]).unwrap_err();
    assert!(matches!(e, ShardError::Corrupt { .. }) && e.to_string().contains("bad.json"), "{e}");
}
