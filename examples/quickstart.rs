//! The main job: prompt-processing and token-generation throughput of a model (the embedded
//! default synthetic model unless `-m` is given), printed as a llama-bench style table.
//!
//! ```sh
//! cargo run --release --example quickstart                 # embedded default (TinyLlama-1.1B shape, Q4_0)
//! cargo run --release --example quickstart -- -m model.gguf -p 512 -n 128 -r 5 -t 2
//! ```

use benchkit::{Backend, Batch, BuildInfo, ContextParams, Model, ModelParams};
use clap::Parser;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Model path; default: the embedded synthetic model (generated once and cached).
    #[arg(short = 'm', long)]
    model: Option<std::path::PathBuf>,
    /// Prompt tokens.
    #[arg(short = 'p', long, default_value_t = 512)]
    n_prompt: usize,
    /// Generated tokens.
    #[arg(short = 'n', long, default_value_t = 128)]
    n_gen: usize,
    /// Repetitions.
    #[arg(short = 'r', long, default_value_t = 3)]
    reps: usize,
    /// Threads (default: physical cores).
    #[arg(short = 't', long)]
    threads: Option<u32>,
}

fn tokens(n: usize, n_vocab: u32, seed: &mut u64) -> Vec<i32> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((*seed >> 33) % n_vocab as u64) as i32
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = Backend::init()?;
    let path = match &args.model {
        Some(p) => p.clone(),
        None => {
            eprintln!("using the embedded default model (generated on first use; takes a minute)...");
            benchkit::synth::default_model(&backend)?
        }
    };
    let model = Model::load(&backend, &path, &ModelParams::default())?;
    let threads = args.threads.unwrap_or(benchkit::system::default_threads() as u32);
    let n_ctx = (args.n_prompt + args.n_gen).max(16) as u32;
    let mut ctx = model.new_context(&ContextParams::default().n_ctx(n_ctx).threads(threads))?;
    let info = model.info().clone();
    let n_batch = ctx.n_batch() as usize;
    let mut batch = Batch::new(n_batch.max(1), 1)?;
    let mut seed = 42u64;

    let mut run = |kind: &str| -> anyhow::Result<f64> {
        ctx.memory_clear(true);
        let start = Instant::now();
        if kind == "pp" {
            let toks = tokens(args.n_prompt, info.n_vocab, &mut seed);
            for (c, chunk) in toks.chunks(n_batch).enumerate() {
                batch.clear();
                for (i, t) in chunk.iter().enumerate() {
                    batch.add(*t, (c * n_batch + i) as i32, &[0], i + 1 == chunk.len())?;
                }
                ctx.decode(&batch)?;
            }
        } else {
            for (i, t) in tokens(args.n_gen, info.n_vocab, &mut seed).into_iter().enumerate() {
                batch.clear();
                batch.add(t, i as i32, &[0], true)?;
                ctx.decode(&batch)?;
            }
        }
        ctx.synchronize();
        let n = if kind == "pp" { args.n_prompt } else { args.n_gen };
        Ok(n as f64 / start.elapsed().as_secs_f64())
    };

    let build = BuildInfo::current();
    println!("| model | size | params | backend | threads | test | t/s |");
    println!("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
    for (kind, n) in [("pp", args.n_prompt), ("tg", args.n_gen)] {
        if n == 0 {
            continue;
        }
        run(kind)?; // warmup
        let samples: Vec<f64> = (0..args.reps.max(1)).map(|_| run(kind)).collect::<anyhow::Result<_>>()?;
        let avg = samples.iter().sum::<f64>() / samples.len() as f64;
        let sd = if samples.len() > 1 {
            (samples.iter().map(|s| (s - avg).powi(2)).sum::<f64>() / (samples.len() - 1) as f64).sqrt()
        } else {
            0.0
        };
        println!(
            "| {} | {:.2} MiB | {:.2} M | {} | {} | {}{} | {:.2} ± {:.2} |",
            info.description,
            info.size_bytes as f64 / 1024.0 / 1024.0,
            info.n_params as f64 / 1e6,
            build.backends_csv(),
            threads,
            kind,
            n,
            avg,
            sd
        );
    }
    println!("\nbuild: {} ({}, {})", build.description, build.compiler, build.link);
    Ok(())
}
