//! Shared-prefix and trace workloads: with the real model's tokenizer, from the command line's
//! flags, through the in-process engine and over HTTP (against the loopback mock).

#[path = "support/mock_openai.rs"]
mod mock_openai;

use std::path::{Path, PathBuf};

use benchkit::cli::replay::ReplayArgs;
use benchkit::replay::workload::{
    load_trace, schedule, shared_prefix_requests, Arrival, Limit, ScheduleConfig, SharedPrefixConfig, TraceOptions,
    Vocab, WorkloadError,
};
use benchkit::replay::{ReplayConfig, Request};
use benchkit::{Backend, Model, ModelParams};

fn gemma() -> Model {
    Model::load(&Backend::init().unwrap(), benchkit_suite::test_model(), &ModelParams::default().use_mmap(true))
        .unwrap()
}

fn tokens(r: &Request) -> &[i32] {
    r.prompt_tokens.as_deref().unwrap()
}

fn group(r: &Request) -> &str {
    r.conversation_id.split('-').nth(2).unwrap()
}

#[test]
fn shared_prefixes_with_the_real_tokenizer() {
    let model = gemma();
    let cfg =
        SharedPrefixConfig { groups: 3, prompts_per_group: 4, system_prompt_len: 64, question_len: 16, output_len: 4 };
    let a = shared_prefix_requests(&model, &cfg, 12, 5).unwrap();
    assert_eq!(a, shared_prefix_requests(&model, &cfg, 12, 5).unwrap(), "same seed, same requests");
    let b = shared_prefix_requests(&model, &cfg, 12, 6).unwrap();
    let order = |r: &[Request]| r.iter().map(|r| r.conversation_id.clone()).collect::<Vec<_>>();
    assert_ne!(order(&a), order(&b), "another seed, another order");
    let mut exact = 0;
    for x in &a {
        assert_eq!((tokens(x).len(), x.prompt_len), (80, 80));
        let (system, question) = (&x.messages[0], &x.messages[1]);
        assert_eq!((system.role.as_str(), question.role.as_str()), ("system", "user"));
        // The text is what the tokens say: re-tokenized, it is the same prompt.
        if Vocab::tokenize(&model, &system.content) == tokens(x)[..64]
            && Vocab::tokenize(&model, &question.content) == tokens(x)[64..]
        {
            exact += 1;
        }
        for y in &a {
            assert_eq!(
                tokens(x)[..64] == tokens(y)[..64],
                group(x) == group(y),
                "{} {}",
                x.conversation_id,
                y.conversation_id
            );
            assert_eq!(system.content == y.messages[0].content, group(x) == group(y));
            assert_eq!(tokens(x)[64..] == tokens(y)[64..], x.conversation_id == y.conversation_id);
        }
    }
    assert!(exact >= 10, "{exact} of 12 prompts re-tokenize to their tokens");
}

fn line(ms: u32, input: u32, output: u32, ids: &str) -> String {
    format!("{{\"timestamp\": {ms}, \"input_length\": {input}, \"output_length\": {output}, \"hash_ids\": [{ids}]}}\n")
}

/// Six requests over 50 ms; the first two share two 16-token blocks, the third shares one.
fn six_lines() -> String {
    [
        line(100, 40, 4, "0,1,2"),
        line(110, 40, 4, "0,1,3"),
        line(120, 30, 4, "0,5"),
        line(130, 20, 3, ""),
        line(140, 24, 4, "7"),
        line(150, 16, 4, "7"),
    ]
    .concat()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn trace_files_prefixes_times_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.jsonl", &six_lines());
    let load = load_trace(&path).unwrap();
    assert_eq!((load.records.len(), load.truncation.as_deref(), load.bytes), (6, None, six_lines().len() as u64));
    let d = load.dataset();
    assert_eq!((d.kind.as_str(), d.path.as_deref(), d.truncated), ("trace", path.to_str(), false));
    assert_eq!(d.sha256.as_ref().unwrap().len(), 64);

    let model = gemma();
    let options = TraceOptions { block_size: 16, num_requests: None, fixed_output_len: None, seed: 1 };
    let r = load.requests(&model, &options).unwrap();
    let lens: Vec<usize> = r.iter().map(|r| tokens(r).len()).collect();
    assert_eq!(lens, [40, 40, 30, 20, 24, 16]);
    assert_eq!(tokens(&r[0])[..32], tokens(&r[1])[..32], "hash ids 0, 1 shared");
    assert_ne!(tokens(&r[0])[32..], tokens(&r[1])[32..]);
    assert_eq!(tokens(&r[2])[..16], tokens(&r[0])[..16], "hash id 0 shared");
    assert_ne!(tokens(&r[2])[16..30], tokens(&r[0])[16..30]);
    assert_eq!(tokens(&r[5])[..], tokens(&r[4])[..16], "hash id 7, whole");
    assert!(r[0].messages[0].content.len() > 40, "text for HTTP targets");
    assert_eq!(r, load.requests(&model, &options).unwrap());

    // Recorded times from the first record, scaled; warmup and limits still apply.
    let mut s = r.clone();
    let info = schedule(&mut s, &ScheduleConfig::new(Arrival::Recorded { time_scale: 0.5 }).warmup(1)).unwrap();
    let times: Vec<u64> = s.iter().map(|r| r.scheduled_ns).collect();
    assert_eq!(times, [0, 5_000_000, 10_000_000, 15_000_000, 20_000_000, 25_000_000]);
    assert_eq!((info.warmup, s[0].warmup, s[1].warmup), (1, true, false));
    assert!((benchkit::replay::workload::mean_rate(&s).unwrap() - 200.0).abs() < 1e-6);
    let mut s = r.clone();
    let limit = Limit { max_requests: None, max_duration: Some(std::time::Duration::from_millis(30)) };
    schedule(&mut s, &ScheduleConfig::new(Arrival::Recorded { time_scale: 1.0 }).limit(limit)).unwrap();
    assert_eq!(s.len(), 4);
    let e = schedule(&mut s, &ScheduleConfig::new(Arrival::Recorded { time_scale: f64::NAN })).unwrap_err();
    assert!(matches!(e, WorkloadError::InvalidTimeScale { .. }), "{e}");

    // A download cut mid-record keeps the records before it.
    let cut = write(dir.path(), "cut.jsonl", &format!("{}{{\"timestamp\": 160, \"input_le", six_lines()));
    let load = load_trace(&cut).unwrap();
    assert_eq!(load.records.len(), 6);
    let d = load.dataset();
    assert!(d.truncated && d.truncation.as_ref().unwrap().contains("line 7"), "{d:?}");
    // A malformed or unsorted line names its file and line.
    let bad =
        write(dir.path(), "bad.jsonl", &format!("{}{{\"timestamp\": 1,,}}\n{}", line(0, 1, 1, ""), line(2, 1, 1, "")));
    let e = load_trace(&bad).unwrap_err();
    assert!(matches!(e, WorkloadError::TraceLine { line: 2, .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{}:2: ", bad.display())), "{e}");
    let unsorted = write(dir.path(), "u.jsonl", &[line(5, 1, 1, ""), line(9, 1, 1, ""), line(7, 1, 1, "")].concat());
    let e = load_trace(&unsorted).unwrap_err().to_string();
    assert!(e.contains(":3: ") && e.contains("earlier"), "{e}");
    assert!(matches!(load_trace(&dir.path().join("none")), Err(WorkloadError::NotFound { .. })));
    assert!(matches!(load_trace(&write(dir.path(), "e", "\n\n")), Err(WorkloadError::Empty { .. })));
}

fn config(flags: &str) -> ReplayConfig {
    let argv = ["benchkit replay"].into_iter().chain(flags.split_whitespace()).map(String::from);
    ReplayArgs::try_parse_argv(argv).unwrap().config(|| unreachable!("-m is given")).unwrap()
}

fn inproc(dataset: &str) -> ReplayConfig {
    let model = benchkit_suite::test_model();
    config(&format!("--in-process -m {} --slots 2 --ctx-per-slot 256 -t 2 {dataset}", model.display()))
}

#[test]
fn shared_prefix_and_trace_through_the_engine() {
    let backend = Backend::init().unwrap();
    let c = inproc(
        "--dataset shared-prefix --shared-prefix-groups 2 --shared-prefix-prompts-per-group 2 \
         --shared-prefix-system-len 48 --shared-prefix-question-len 8 --output-len 4 --seed 3",
    );
    let prepared = c.prepare(&backend).unwrap();
    assert_eq!(prepared.requests().len(), 4);
    assert!(prepared.requests().iter().all(|r| r.prompt_tokens.as_ref().map(Vec::len) == Some(56)));
    let result = prepared.run(&backend, |_| {}).unwrap();
    assert_eq!((result.summary.completed, result.summary.total_output_tokens, result.num_prompts), (4, 16, 4));
    assert_eq!(result.summary.total_input_tokens, 4 * 56);
    assert_eq!(result.provenance.dataset.as_ref().unwrap().kind, "shared_prefix");
    let workload = &result.provenance.settings["workload"]["dataset"];
    assert_eq!((workload["kind"].as_str(), workload["groups"].as_u64()), (Some("shared_prefix"), Some(2)));

    let dir = tempfile::tempdir().unwrap();
    let trace = write(dir.path(), "six.jsonl", &six_lines());
    let c = inproc(&format!("--dataset trace:{} --trace-block-size 16 --trace-time-scale 2", trace.display()));
    assert_eq!(c.schedule.arrival, Arrival::Recorded { time_scale: 2.0 });
    let prepared = c.prepare(&backend).unwrap();
    let times: Vec<u64> = prepared.requests().iter().map(|r| r.scheduled_ns).collect();
    assert_eq!(times, [0, 20_000_000, 40_000_000, 60_000_000, 80_000_000, 100_000_000]);
    let result = prepared.run(&backend, |_| {}).unwrap();
    assert_eq!((result.summary.completed, result.num_prompts, result.summary.total_output_tokens), (6, 6, 23));
    let d = result.provenance.dataset.as_ref().unwrap();
    assert_eq!((d.kind.as_str(), d.path.as_deref()), ("trace", trace.to_str()));
    assert!(d.sha256.is_some());
    assert_eq!(serde_json::to_value(result.request_rate).unwrap(), 50.0, "5 gaps over 100 ms");
    assert_eq!(result.provenance.settings["workload"]["dataset"]["block_size"], 16);

    // The first records only, warmup first.
    let c = inproc(&format!("--dataset trace:{} --trace-block-size 16 --num-prompts 2 --warmup 1", trace.display()));
    let result = c.run(&backend, |_| {}).unwrap();
    assert_eq!((result.summary.completed, result.num_prompts), (2, 2));
    let c = inproc(&format!("--dataset trace:{} --num-prompts 6 --warmup 1", trace.display()));
    let e = c.prepare(&backend).err().unwrap().to_string();
    assert!(e.contains("holds 6 records, 7 were asked"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_prefix_over_http_sends_a_system_message() {
    let server = mock_openai::MockServer::start().await;
    let backend = Backend::init().unwrap();
    let model = benchkit_suite::test_model();
    let flags = |endpoint: &str| {
        format!(
            "--target http --base-url {} --model mock-model -m {} --endpoint {endpoint} --no-server-metrics \
             --dataset shared-prefix --shared-prefix-groups 2 --shared-prefix-prompts-per-group 2 \
             --shared-prefix-system-len 32 --shared-prefix-question-len 8 --output-len 3",
            server.base_url(),
            model.display()
        )
    };
    let tokenizer = gemma();
    let prepared = config(&flags("chat")).prepare(&backend).unwrap();
    for r in prepared.requests() {
        assert!(r.prompt_tokens.is_none(), "text targets get the text alone");
        let counted: usize = r.messages.iter().map(|m| Vocab::tokenize(&tokenizer, &m.content).len()).sum();
        assert_eq!(r.prompt_len as usize, counted);
    }
    let result = prepared.run_async(&backend, |_| {}).await.unwrap();
    assert_eq!(
        (result.summary.completed, result.provenance.dataset.as_ref().unwrap().kind.as_str()),
        (4, "shared_prefix")
    );
    let body: serde_json::Value = serde_json::from_slice(&server.stats.last_body.lock().unwrap()).unwrap();
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");

    let prepared = config(&flags("completions")).prepare(&backend).unwrap();
    let r = &prepared.requests()[0];
    let joined = format!("{}\n\n{}", r.messages[0].content, r.messages[1].content);
    assert_eq!(r.prompt_len as usize, Vocab::tokenize(&tokenizer, &joined).len(), "counted as sent");
    let result = prepared.run_async(&backend, |_| {}).await.unwrap();
    assert_eq!(result.summary.completed, 4);
    let body: serde_json::Value = serde_json::from_slice(&server.stats.last_body.lock().unwrap()).unwrap();
    // The system prompt and the question, joined by the only blank line (the random text has
    // no control characters).
    let prompt = body["prompt"].as_str().unwrap();
    assert_eq!(prompt.matches("\n\n").count(), 1, "{prompt:?}");
}
