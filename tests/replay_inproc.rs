//! The in-process target: continuous batching over sequence slots, greedy generation to the
//! target length, per-token timing, and typed failures.

use benchkit::quantize::Quant;
use benchkit::replay::inproc::{InprocConfig, InprocTarget};
use benchkit::replay::{Failure, Request, Target, TokenCountSource};
use benchkit::synth::{self, Shape, SynthSpec, WeightType};
use benchkit::Backend;
use std::time::Instant;

fn tiny_model() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("benchkit-inproc-{}", std::process::id()));
    let spec = SynthSpec { name: "tiny".into(), shape: Shape::tiny(), seed: 5, weight_type: WeightType::F16 };
    synth::cached_model_in(&Backend::init().unwrap(), &dir, &spec, Some(Quant::Q8_0)).unwrap()
}

fn request(id: u64, prompt_len: usize, output_len: u32) -> Request {
    Request {
        id,
        conversation_id: format!("synthetic-{id}"),
        turn: 0,
        messages: Vec::new(),
        prompt_tokens: Some((0..prompt_len).map(|i| 300 + ((i as i32 * 7 + id as i32) % 200)).collect()),
        prompt_len: prompt_len as u32,
        output_len,
        scheduled_ns: 0,
        warmup: false,
    }
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
