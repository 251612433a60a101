//! Checks that the in-process replay engine adds nothing to generation speed: at concurrency 1
//! its tg speed should match the pp/tg measurement's tg for the same model and threads.
//!
//! ```sh
//! cargo run --release --example inproc_vs_bench -- -m models/gemma-3-270m-q4_k_m.gguf -t 2 -n 128
//! ```

use benchkit::bench::{Grid, RunConfig, Sweep};
use benchkit::replay::inproc::{InprocConfig, InprocTarget};
use benchkit::replay::{Request, Target};
use benchkit::Backend;
use clap::Parser;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Model (default: the embedded synthetic model).
    #[arg(short = 'm')]
    model: Option<std::path::PathBuf>,
    /// Threads.
    #[arg(short = 't', default_value_t = 2)]
    threads: u32,
    /// Generated tokens per measurement.
    #[arg(short = 'n', default_value_t = 128)]
    n_gen: u32,
    /// Alternating rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let backend = Backend::init()?;
    let model = match a.model {
        Some(m) => m,
        None => benchkit::synth::default_model(&backend)?,
    };
    let grid = Grid { n_prompt: vec![0], n_gen: vec![a.n_gen], n_threads: vec![a.threads], ..Grid::new(&model) };
    let mut cfg = InprocConfig::new(&model, 1, a.n_gen + 64);
    cfg.context = cfg.context.threads(a.threads);
    let target = InprocTarget::start(&backend, cfg)?;
    let mut bench_ts = Vec::new();
    let mut inproc_ts = Vec::new();
    for round in 0..a.rounds {
        let rec = Sweep::new(&backend, &grid, RunConfig { repetitions: 3, ..RunConfig::default() })?
            .next()
            .expect("one point");
        bench_ts.push(rec.avg_ts);
        // One request: 1 prompt token (BOS-like), n_gen + 1 outputs; the decode steps after the
        // first token are exactly tg's single-token decodes.
        let req = Request::tokens(round as u64, vec![1], a.n_gen + 1);
        let r = target.send(req, Instant::now()).await;
        anyhow::ensure!(r.ok(), "in-process request failed: {:?}", r.failure);
        let gen_ns: u64 = r.itl_ns.iter().sum();
        inproc_ts.push(r.itl_ns.len() as f64 * 1e9 / gen_ns as f64);
        eprintln!("round {}: bench tg {:.2} t/s, inproc {:.2} t/s", round + 1, bench_ts[round], inproc_ts[round]);
    }
    let ratios: Vec<f64> = bench_ts.iter().zip(&inproc_ts).map(|(b, i)| i / b).collect();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!("| tg{} t{} | bench t/s | inproc t/s | inproc / bench |", a.n_gen, a.threads);
    println!("| --- | ---: | ---: | ---: |");
    for (i, r) in ratios.iter().enumerate() {
        println!("| round {} | {:.2} | {:.2} | {:.4} |", i + 1, bench_ts[i], inproc_ts[i], r);
    }
    println!("\nmedian ratio {median:.4} (target: within 5%)");
    Ok(())
}
