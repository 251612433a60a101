//! Perplexity and KL-divergence like llama.cpp's `llama-perplexity`, with its flags and output.
//!
//! ```sh
//! benchkit perplexity -m model.gguf -f text.txt -c 512 -b 2048 -t 2
//! benchkit perplexity -m f16.gguf -f text.txt -c 512 --kl-divergence-base base.kld
//! benchkit perplexity -m q4.gguf -c 512 --kl-divergence-base base.kld --kl-divergence
//! benchkit perplexity -m model.gguf -f text.txt --chunks 10 --json > result.json
//! ```
//!
//! Per-chunk values and `Final estimate: PPL = X +/- Y` go to stdout as llama-perplexity prints
//! them; with `--json` the result record goes to stdout and the rest to stderr. The run is
//! supervised in a worker process (this program, re-executed) unless `--in-process` is given.

use benchkit::perplexity::{
    KlBaseHeader, KlChunkResult, KlDivergenceResult, PerplexityJob, PerplexityOutput, PerplexityParams,
    PerplexityProgress, PerplexityTask,
};
use benchkit::supervise::TrialOptions;
use benchkit::{Backend, FlashAttn, ModelParams};
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "benchkit perplexity", about = "Perplexity / KL-divergence as llama-perplexity measures them")]
struct Args {
    /// Model path.
    #[arg(short = 'm', long)]
    model: PathBuf,
    /// Text file (not needed with --kl-divergence).
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    /// Chunk length (default 512; with --kl-divergence, the base file's).
    #[arg(short = 'c', long = "ctx-size")]
    ctx_size: Option<u32>,
    /// Logical batch size.
    #[arg(short = 'b', long = "batch-size", default_value_t = 2048)]
    batch_size: u32,
    /// Physical batch size.
    #[arg(long = "ubatch-size", visible_alias = "ub", default_value_t = 512)]
    ubatch_size: u32,
    /// Threads (default: physical cores).
    #[arg(short = 't', long)]
    threads: Option<u32>,
    /// Layers to offload to the GPU.
    #[arg(long = "n-gpu-layers", visible_alias = "ngl", alias = "gpu-layers", allow_hyphen_values = true)]
    n_gpu_layers: Option<i32>,
    /// Flash attention: on, off or auto.
    #[arg(long = "flash-attn", visible_alias = "fa", default_value = "auto")]
    flash_attn: String,
    /// Evaluate at most this many chunks (-1 = all).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    chunks: i64,
    /// Base log-probabilities file: written, or read with --kl-divergence.
    #[arg(long = "kl-divergence-base", visible_alias = "save-all-logits")]
    kl_divergence_base: Option<PathBuf>,
    /// Compare the model against --kl-divergence-base.
    #[arg(long = "kl-divergence")]
    kl_divergence: bool,
    /// Score after each decode instead of while the next one runs (the default overlaps only
    /// when there are more CPUs than threads).
    #[arg(long, conflicts_with = "overlap")]
    no_overlap: bool,
    /// Run in this process instead of a supervised worker process (by default a llama.cpp
    /// abort or fault is reported with its crash report instead of ending this program).
    #[arg(long)]
    in_process: bool,
    /// Kill the run's worker after this many seconds (supervised runs only).
    #[arg(long, value_name = "SECS", conflicts_with = "in_process")]
    timeout: Option<f64>,
    /// Score while the next batch decodes, even with no CPU to spare.
    #[arg(long)]
    overlap: bool,
    /// Print the result record as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Where llama-perplexity's stdout text goes: stdout, or stderr with --json.
struct Out(bool);

impl Out {
    fn print(&self, s: &str) {
        if self.0 {
            eprint!("{s}");
        } else {
            print!("{s}");
            let _ = std::io::stdout().flush();
        }
    }
}

/// `benchkit perplexity ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    // Single-dash long flags as llama.cpp spells them.
    let argv = argv.into_iter().map(|a| match a.as_str() {
        "-ngl" => "--ngl".to_string(),
        "-ub" => "--ub".to_string(),
        "-fa" => "--fa".to_string(),
        _ => a,
    });
    let args = Args::parse_from(argv);
    let out = Out(args.json);
    let flash_attn: FlashAttn = args.flash_attn.parse()?;
    let mut mp = ModelParams::default();
    if let Some(n) = args.n_gpu_layers {
        mp = mp.n_gpu_layers(n);
    }
    let mut params = PerplexityParams {
        n_batch: args.batch_size,
        n_ubatch: args.ubatch_size,
        chunks: usize::try_from(args.chunks).ok().filter(|&c| c > 0),
        flash_attn,
        ..Default::default()
    };
    if let Some(t) = args.threads {
        params.n_threads = t;
        params.overlap = std::thread::available_parallelism().map_or(1, |n| n.get()) > t as usize;
    }
    if args.overlap || args.no_overlap {
        params.overlap = args.overlap;
    }

    let task = if args.kl_divergence {
        let base = args
            .kl_divergence_base
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--kl-divergence needs --kl-divergence-base FILE"))?;
        let (header, _) = KlBaseHeader::read(&base)?;
        params.n_ctx = args.ctx_size.unwrap_or(header.n_ctx);
        let l = params.layout()?;
        eprintln!(
            "kl_divergence: computing over {} chunks, n_ctx={}, batch_size={}, n_seq={}",
            header.n_chunk, header.n_ctx, l.n_batch, l.n_seq
        );
        out.print("\nchunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n");
        PerplexityTask::KlDivergence { base }
    } else {
        let text = args.file.clone().ok_or_else(|| anyhow::anyhow!("-f FILE is required (the text to evaluate)"))?;
        params.n_ctx = args.ctx_size.unwrap_or(512);
        eprintln!("perplexity: tokenizing the input ..");
        match args.kl_divergence_base.clone() {
            Some(base) => PerplexityTask::SaveKlBase { text, base },
            None => PerplexityTask::Perplexity { text },
        }
    };
    let layout = params.layout()?;
    let job = PerplexityJob { model: args.model.clone(), model_params: mp, params, task };
    let mut first = true;
    let progress = |p: &PerplexityProgress| match p {
        PerplexityProgress::Chunk(c) => {
            if std::mem::take(&mut first) {
                eprintln!(
                    "perplexity: calculating perplexity over {} chunks, n_ctx={}, batch_size={}, n_seq={}",
                    c.n_chunk, layout.n_ctx, layout.n_batch, layout.n_seq
                );
            }
            out.print(&format!("[{}]{:.4},", c.chunk, c.ppl));
        }
        PerplexityProgress::KlChunk(c) => out.print(&kl_line(c)),
        _ => {}
    };
    let result = if args.in_process {
        job.run(&Backend::init()?, progress)?
    } else {
        let opts = TrialOptions { timeout: args.timeout.map(std::time::Duration::from_secs_f64), ..Default::default() };
        job.run_supervised(&opts, progress)?
    };
    out.print("\n");
    match &result {
        PerplexityOutput::KlDivergence(r) if r.n_scored >= 100 => out.print(&kl_report(r)),
        PerplexityOutput::KlDivergence(_) => {}
        PerplexityOutput::Perplexity(r) => {
            eprintln!(
                "perplexity: tokenization took {:.3} ms, {:.2} seconds per pass",
                r.timings.tokenize_ms, r.timings.seconds_per_pass
            );
            out.print(&format!("Final estimate: PPL = {:.4} +/- {:.5}\n", r.ppl, r.ppl_uncertainty));
            eprintln!(
                "perplexity: {} tokens ({} evaluated, {} scored) in {:.2} s, {:.1} tokens/s",
                r.n_tokens, r.n_tokens_evaluated, r.n_scored, r.timings.total_s, r.timings.tokens_per_s
            );
        }
        _ => {}
    }
    if args.json {
        match &result {
            PerplexityOutput::KlDivergence(r) => println!("{}", serde_json::to_string_pretty(r)?),
            PerplexityOutput::Perplexity(r) => println!("{}", serde_json::to_string_pretty(r)?),
            _ => {}
        }
    }
    Ok(())
}

/// One row of llama-perplexity's KL-divergence table.
fn kl_line(c: &KlChunkResult) -> String {
    let k = &c.running;
    format!(
        "{:4}    {} ± {}    {} ± {}    {} ± {}    {} ± {} %    {} ± {} %\n",
        c.chunk,
        cf(k.ppl.value, 9, 4),
        cf(k.ppl.uncertainty, 9, 4),
        cf(k.ln_ppl_ratio.value, 10, 5),
        cf(k.ln_ppl_ratio.uncertainty, 10, 5),
        cf(k.kld.value, 10, 5),
        cf(k.kld.uncertainty, 10, 5),
        cf(100.0 * k.p_diff_rms.value, 6, 3),
        cf(100.0 * k.p_diff_rms.uncertainty, 6, 3),
        cf(100.0 * k.same_top.value, 6, 3),
        cf(100.0 * k.same_top.uncertainty, 6, 3)
    )
}

/// `%W.Plf` as C's printf writes it (`nan` / `-nan` rather than Rust's `NaN`).
fn cf(v: f64, width: usize, prec: usize) -> String {
    if v.is_nan() {
        let s = if v.is_sign_negative() { "-nan" } else { "nan" };
        format!("{s:>width$}")
    } else {
        format!("{v:width$.prec$}")
    }
}

/// llama-perplexity's final KL-divergence report.
fn kl_report(r: &KlDivergenceResult) -> String {
    let p = &r.ppl;
    let k = &r.kld_distribution;
    let d = &r.p_diff_distribution;
    let mut s = String::new();
    s += "====== Perplexity statistics ======\n";
    s += &format!("Mean PPL(Q)                   : {:10.6} ± {:10.6}\n", p.ppl.value, p.ppl.uncertainty);
    s += &format!("Mean PPL(base)                : {:10.6} ± {:10.6}\n", p.ppl_base.value, p.ppl_base.uncertainty);
    s += &format!("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%\n", 100.0 * p.ln_ppl_correlation);
    s += &format!(
        "Mean ln(PPL(Q)/PPL(base))     : {:10.6} ± {:10.6}\n",
        p.ln_ppl_ratio.value, p.ln_ppl_ratio.uncertainty
    );
    s += &format!("Mean PPL(Q)/PPL(base)         : {:10.6} ± {:10.6}\n", p.ppl_ratio.value, p.ppl_ratio.uncertainty);
    s += &format!("Mean PPL(Q)-PPL(base)         : {:10.6} ± {:10.6}\n", p.ppl_diff.value, p.ppl_diff.uncertainty);
    s += "\n====== KL divergence statistics ======\n";
    s += &format!("Mean    KLD: {:10.6} ± {:10.6}\n", r.kld.value, r.kld.uncertainty);
    for (label, v) in [
        ("Maximum KLD", k.max),
        ("99.9%   KLD", k.p99_9),
        ("99.0%   KLD", k.p99),
        ("95.0%   KLD", k.p95),
        ("90.0%   KLD", k.p90),
        ("Median  KLD", k.median),
        ("10.0%   KLD", k.p10),
        (" 5.0%   KLD", k.p5),
        (" 1.0%   KLD", k.p1),
        (" 0.1%   KLD", k.p0_1),
        ("Minimum KLD", k.min),
    ] {
        s += &format!("{label}: {v:10.6}\n");
    }
    s += "\n====== Token probability statistics ======\n";
    s += &format!("Mean    Δp: {:6.3} ± {:5.3} %\n", 100.0 * r.p_diff.value, 100.0 * r.p_diff.uncertainty);
    for (label, v) in [
        ("Maximum Δp", d.max),
        ("99.9%   Δp", d.p99_9),
        ("99.0%   Δp", d.p99),
        ("95.0%   Δp", d.p95),
        ("90.0%   Δp", d.p90),
        ("75.0%   Δp", d.p75),
        ("Median  Δp", d.median),
        ("25.0%   Δp", d.p25),
        ("10.0%   Δp", d.p10),
        (" 5.0%   Δp", d.p5),
        (" 1.0%   Δp", d.p1),
        (" 0.1%   Δp", d.p0_1),
        ("Minimum Δp", d.min),
    ] {
        s += &format!("{label}: {:6.3}%\n", 100.0 * v);
    }
    s += &format!("RMS Δp    : {:6.3} ± {:5.3} %\n", 100.0 * r.p_diff_rms.value, 100.0 * r.p_diff_rms.uncertainty);
    s += &format!("Same top p: {:6.3} ± {:5.3} %\n", 100.0 * r.same_top.value, 100.0 * r.same_top.uncertainty);
    s
}
