//! The in-process target: continuous batching over sequence slots, greedy generation to the
//! target length, per-token timing, and typed failures.

use benchkit::quantize::Quant;
use benchkit::replay::inproc::{InprocConfig, InprocError, InprocTarget};
use benchkit::replay::{Failure, Request, Target, TokenCountSource};
use benchkit::synth::{self, Shape, SynthConfig, WeightType};
use benchkit::Backend;
use std::time::Instant;

fn tiny_model() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("benchkit-inproc-{}", std::process::id()));
    let spec = SynthConfig { name: "tiny".into(), shape: Shape::tiny(), seed: 5, weight_type: WeightType::F16 };
    synth::cached_model_in(&Backend::init().unwrap(), &dir, &spec, Some(Quant::Q8_0)).unwrap()
}

fn request(id: u64, prompt_len: usize, output_len: u32) -> Request {
    Request::tokens(id, (0..prompt_len).map(|i| 300 + ((i as i32 * 7 + id as i32) % 200)).collect(), output_len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_engine() {
    let backend = Backend::init().unwrap();
    let mut cfg = InprocConfig::new(tiny_model(), 4, 128);
    cfg.context = cfg.context.n_batch(64).n_ubatch(64).threads(2);
    let target = InprocTarget::start(&backend, cfg).unwrap();
    assert!(target.describe().starts_with("inproc:llama"));
    let start = Instant::now();
    // 10 requests on 4 slots: later ones wait for a free slot, prompts of 40 tokens are
    // prefilled in chunks shared with other slots' decode tokens.
    let futures: Vec<_> = (0..10).map(|i| target.send(request(i, 40, 8 + i as u32), start)).collect();
    let mut records = Vec::new();
    for f in futures {
        records.push(f.await);
    }
    for (i, r) in records.iter().enumerate() {
        assert!(r.ok(), "{:?}", r.failure);
        assert_eq!(r.id, i as u64);
        assert_eq!(r.output_tokens, 8 + i as u32);
        assert_eq!(r.input_tokens, 40);
        assert_eq!(r.output_tokens_source, TokenCountSource::Engine);
        let first = r.first_token_ns.unwrap();
        assert!(r.sent_ns <= first && first <= r.end_ns);
        assert_eq!(r.itl_ns.len(), r.output_tokens as usize - 1);
        assert!(r.itl_ns.iter().sum::<u64>() <= r.end_ns - first);
    }
    // Slots are reused: the last requests started after earlier ones finished.
    assert!(records[9].first_token_ns.unwrap() > records[0].first_token_ns.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_empty_requests_fail_typed_and_the_engine_goes_on() {
    let backend = Backend::init().unwrap();
    let target = InprocTarget::start(&backend, InprocConfig::new(tiny_model(), 2, 64)).unwrap();
    let start = Instant::now();
    let too_long = target.send(request(0, 400, 200), start).await;
    assert!(matches!(too_long.failure, Some(Failure::ContextExceeded { .. })), "{:?}", too_long.failure);
    let empty = target.send(request(1, 0, 4), start).await;
    assert!(matches!(empty.failure, Some(Failure::Other { .. })));
    let ok = target.send(request(2, 16, 4), start).await;
    assert!(ok.ok(), "{:?}", ok.failure);
    assert_eq!(ok.output_tokens, 4);
}

#[test]
fn start_fails_typed_for_a_missing_model() {
    let backend = Backend::init().unwrap();
    let err = InprocTarget::start(&backend, InprocConfig::new("/nonexistent.gguf", 1, 64)).err().unwrap();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[test]
fn start_rejects_a_batch_smaller_than_the_slots() {
    // One step decodes a token for every generating slot; a smaller n_batch dropped tokens.
    let backend = Backend::init().unwrap();
    let mut config = InprocConfig::new(tiny_model(), 8, 64);
    config.context.n_batch = 4;
    let err = InprocTarget::start(&backend, config).err().expect("n_batch 4 < 8 slots is refused");
    assert!(matches!(err, InprocError::BatchSmallerThanSlots { n_batch: 4, n_seq_max: 8 }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_keeps_schedule_concurrency_and_turn_order() {
    use benchkit::replay::{drive, DriveConfig};
    use std::sync::Arc;
    let backend = Backend::init().unwrap();
    let target: Arc<dyn Target> =
        Arc::new(InprocTarget::start(&backend, InprocConfig::new(tiny_model(), 4, 128)).unwrap());
    let mut reqs: Vec<Request> = (0..6).map(|i| Request { scheduled_ns: i * 5_000_000, ..request(i, 12, 4) }).collect();
    // Conversation "conv" has three turns; turns 1 and 2 must follow completions.
    for turn in 0..3u32 {
        reqs.push(Request { conversation_id: "conv".into(), turn, id: 100 + u64::from(turn), ..request(0, 8, 3) });
    }
    let mut records = Vec::new();
    let stats =
        drive(target, reqs, &DriveConfig { max_concurrency: Some(2), ..Default::default() }, |r| records.push(r)).await;
    assert_eq!(records.len(), 9);
    assert_eq!(stats.sent, 9);
    assert!(records.iter().all(|r| r.ok()));
    for r in records.iter().filter(|r| r.conversation_id.starts_with("synthetic")) {
        // Sent no earlier than scheduled.
        assert!(r.sent_ns >= r.scheduled_ns, "{r:?}");
    }
    let conv: Vec<_> = records.iter().filter(|r| r.conversation_id == "conv").collect();
    assert_eq!(conv.iter().map(|r| r.turn).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(conv[1].sent_ns >= conv[0].end_ns && conv[2].sent_ns >= conv[1].end_ns);
    // Never more than 2 in flight.
    let mut events: Vec<(u64, i32)> = records.iter().flat_map(|r| [(r.sent_ns, 1), (r.end_ns, -1)]).collect();
    events.sort_by_key(|&(t, d)| (t, d));
    let mut in_flight = 0;
    for (_, d) in events {
        in_flight += d;
        assert!(in_flight <= 2);
    }
}

fn worker() -> benchkit::supervise::TrialConfig {
    use benchkit::supervise::{TrialConfig, WorkerCommand};
    TrialConfig::default().worker(WorkerCommand::program(env!("CARGO_BIN_EXE_benchkit-worker")))
}

#[test]
fn a_supervised_replay_streams_every_record_and_survives_an_engine_abort() {
    use benchkit::replay::{replay_inproc_supervised, DriveConfig};
    use benchkit::supervise::TrialError;
    let reqs: Vec<Request> = (0..5).map(|i| Request { scheduled_ns: i * 2_000_000, ..request(i, 10, 3) }).collect();
    let mut records = Vec::new();
    let stats = replay_inproc_supervised(
        &InprocConfig::new(tiny_model(), 2, 64),
        reqs,
        &DriveConfig::default(),
        &worker(),
        |r| records.push(r),
    )
    .unwrap();
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r.ok() && r.output_tokens == 3), "{records:?}");
    let mut ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    assert!(stats.duration.as_nanos() > 0);

    // A KV cache type ggml cannot write makes llama.cpp abort while the engine starts: the
    // caller gets the crash report, not the end of its process.
    let mut config = InprocConfig::new(benchkit_suite::test_model(), 1, 64);
    config.context.type_k = benchkit::gguf::GgmlType::IQ2_XXS;
    config.context.flash_attn = benchkit::FlashAttn::On;
    let err = replay_inproc_supervised(&config, vec![request(0, 8, 2)], &DriveConfig::default(), &worker(), |_| {})
        .unwrap_err();
    match &err {
        TrialError::Crashed(r) => {
            assert_eq!(r.signal.as_deref(), Some("SIGABRT"), "{r:?}");
            assert!(r.abort_message.as_deref().unwrap_or("").contains("SET_ROWS"), "{r:?}");
        }
        other => panic!("expected a crash, got {other}"),
    }
}
