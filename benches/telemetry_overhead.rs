//! What sampling costs: tg t/s with telemetry off and on (100 ms and 10 ms intervals), measured
//! side by side in one run, in rounds whose order alternates, and printed as paired ratios.
//! The recorder samples this process, as an in-process run does (the worst case: its thread
//! competes with llama.cpp's for the same cores). Under `cargo test` (no `--bench`) one short
//! round checks that it runs.
//!
//! ```sh
//! cargo bench --bench telemetry_overhead
//! BENCHKIT_MODEL=models/gemma-3-270m-q4_k_m.gguf ROUNDS=10 cargo bench --bench telemetry_overhead
//! ```

use benchkit::bench::{Measurer, Test};
use benchkit::supervise::Phase;
use benchkit::telemetry::{Recorder, TelemetryConfig};
use benchkit::{Backend, ContextParams, Model, ModelParams, ThreadPoolParams};
use std::time::Duration;

fn main() {
    let backend = Backend::init().unwrap();
    let path = match std::env::var_os("BENCHKIT_MODEL") {
        Some(p) => p.into(),
        None => benchkit::synth::default_model(&backend).expect("the embedded default model"),
    };
    // `cargo test --all-targets` runs this too, without `--bench`: one short round as a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let rounds: usize = if smoke { 1 } else { std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(6) };
    let model = Model::load(&backend, &path, &ModelParams::default()).unwrap();
    let threads = benchkit::system::default_threads();
    let mut m = Measurer::new(&model, Test::tg(64), &ContextParams::default(), &ThreadPoolParams::new(threads), 1)
        .expect("a tg64 measurer");
    let tokens = m.tokens_per_run() as f64;
    let iters = if smoke { 1 } else { 4 };
    m.iter_custom(1); // warm up
    let modes: [(&str, Option<Duration>); 3] =
        [("off", None), ("100ms", Some(Duration::from_millis(100))), ("10ms", Some(Duration::from_millis(10)))];
    let mut ts: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds {
        // Alternate the order so drift in the machine does not favour one mode.
        let order: Vec<usize> =
            if round % 2 == 0 { (0..modes.len()).collect() } else { (0..modes.len()).rev().collect() };
        for i in order {
            let recorder = modes[i].1.map(|interval| {
                let r =
                    Recorder::start(std::process::id(), &TelemetryConfig { interval, ..TelemetryConfig::default() });
                r.phase(0, Phase::Start, 0);
                r
            });
            let d = m.iter_custom(iters);
            if let Some(r) = recorder {
                let t = r.take(0);
                assert!(t.cpu.value().is_some(), "the recorder sampled: {t:?}");
            }
            ts[i].push(tokens * iters as f64 / d.as_secs_f64());
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "telemetry overhead: {} ({threads} threads), tg64 x {iters} per sample, {rounds} rounds",
        model.info().description
    );
    println!("  off     {:8.2} t/s (median)", median(ts[0].clone()));
    for (i, (name, _)) in modes.iter().enumerate().skip(1) {
        let ratios: Vec<f64> = ts[i].iter().zip(&ts[0]).map(|(on, off)| on / off).collect();
        let (lo, hi) = ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &r| (a.min(r), b.max(r)));
        println!(
            "  {name:<6}  {:8.2} t/s (median)   on/off ratio: median {:.4}, range {lo:.4}..{hi:.4}",
            median(ts[i].clone()),
            median(ratios)
        );
    }
}
