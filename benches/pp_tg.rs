//! Criterion suite: pp and tg throughput (tokens/s) over a few batch sizes and thread counts,
//! on the embedded default synthetic model or `BENCHKIT_MODEL`.
//!
//! ```sh
//! cargo bench --bench pp_tg
//! BENCHKIT_MODEL=models/gemma-3-270m-q4_k_m.gguf cargo bench --bench pp_tg
//! ```

#![allow(missing_docs)] // criterion_group! generates undocumented items

use benchkit::bench::{Measurer, Test};
use benchkit::{Backend, ContextParams, Model, ModelParams, ThreadPoolParams};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

fn model_path(backend: &Backend) -> std::path::PathBuf {
    match std::env::var_os("BENCHKIT_MODEL") {
        Some(p) => p.into(),
        None => benchkit::synth::default_model(backend).expect("generate the embedded default model"),
    }
}

fn thread_counts() -> Vec<usize> {
    let max = benchkit::system::default_threads();
    let mut t = vec![1];
    if max > 1 {
        t.push(max);
    }
    t
}

fn pp_tg(c: &mut Criterion) {
    let backend = Backend::init().unwrap();
    let model = Model::load(&backend, model_path(&backend), &ModelParams::default()).unwrap();
    let name = model.info().description.clone();

    let mut pp = c.benchmark_group(format!("pp/{name}"));
    pp.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(1));
    for &threads in &thread_counts() {
        for n_batch in [64u32, 512] {
            let test = Test::pp(512);
            let params = ContextParams::default().n_batch(n_batch).n_ubatch(n_batch);
            let mut m = Measurer::new(&model, test, &params, &ThreadPoolParams::new(threads), 1).unwrap();
            pp.throughput(Throughput::Elements(m.tokens_per_run()));
            pp.bench_function(BenchmarkId::new(format!("pp512/b{n_batch}"), format!("t{threads}")), |b| {
                b.iter_custom(|iters| m.iter_custom(iters))
            });
        }
    }
    pp.finish();

    let mut tg = c.benchmark_group(format!("tg/{name}"));
    tg.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(1));
    for &threads in &thread_counts() {
        let mut m =
            Measurer::new(&model, Test::tg(32), &ContextParams::default(), &ThreadPoolParams::new(threads), 1).unwrap();
        tg.throughput(Throughput::Elements(m.tokens_per_run()));
        tg.bench_function(BenchmarkId::new("tg32", format!("t{threads}")), |b| {
            b.iter_custom(|iters| m.iter_custom(iters))
        });
    }
    tg.finish();
}

criterion_group!(benches, pp_tg);
criterion_main!(benches);
