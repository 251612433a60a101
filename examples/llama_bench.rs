//! A command-line front end with llama-bench's flags, printing llama-bench's output formats.
//!
//! ```sh
//! cargo run --release --example llama_bench -- -m model.gguf -p 512 -n 128 -t 2 -o json
//! cargo run --release --example llama_bench -- -t 1,2 -b 64-512*2 -o md      # embedded default model
//! ```
//! Extra flags: `--seed N` (random prompt tokens), `--save-jsonl FILE` (append every record,
//! with benchkit's fields, as soon as it is measured), `--preset NAME` / `--quant Q` (which
//! synthetic model to use without `-m`).

use benchkit::bench::output::{MdColumns, OutputFormat, Writer};
use benchkit::bench::{parse_int_list, parse_u32_list, BenchRecord, Grid, Progress, RunSettings, Status, Sweep};
use benchkit::gguf::GgmlType;
use benchkit::{Backend, FlashAttn, Priority, SplitMode};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;

/// llama-bench's multi-letter single-dash flags, rewritten to `--name` for clap.
const SINGLE_DASH: &[&str] =
    &["-pg", "-ub", "-ctk", "-ctv", "-ngl", "-sm", "-mg", "-nkvo", "-fa", "-ts", "-mmp", "-embd", "-oe", "-dev"];

#[derive(Parser, Debug)]
#[command(about = "llama-bench compatible pp/tg benchmark (benchkit)")]
struct Args {
    /// Model file(s); default: the embedded synthetic model.
    #[arg(short = 'm', long = "model")]
    model: Vec<PathBuf>,
    /// Prompt sizes (lists and ranges: 512,1024 or 128-1024*2).
    #[arg(short = 'p', long = "n-prompt")]
    n_prompt: Vec<String>,
    /// Generation sizes.
    #[arg(short = 'n', long = "n-gen")]
    n_gen: Vec<String>,
    /// Prompt+generation pairs `pp,tg`.
    #[arg(long = "pg")]
    pg: Vec<String>,
    /// Depths.
    #[arg(short = 'd', long = "n-depth")]
    n_depth: Vec<String>,
    /// Logical batch sizes.
    #[arg(short = 'b', long = "batch-size")]
    n_batch: Vec<String>,
    /// Physical batch sizes.
    #[arg(long = "ub")]
    n_ubatch: Vec<String>,
    /// K cache types.
    #[arg(long = "ctk")]
    type_k: Vec<String>,
    /// V cache types.
    #[arg(long = "ctv")]
    type_v: Vec<String>,
    /// Threads.
    #[arg(short = 't', long = "threads")]
    threads: Vec<String>,
    /// CPU masks (hex).
    #[arg(short = 'C', long = "cpu-mask")]
    cpu_mask: Vec<String>,
    /// Strict CPU placement (0/1 lists).
    #[arg(long = "cpu-strict")]
    cpu_strict: Vec<String>,
    /// Polling levels 0..100.
    #[arg(long = "poll")]
    poll: Vec<String>,
    /// GPU layers.
    #[arg(long = "ngl")]
    ngl: Vec<String>,
    /// Split modes (none, layer, row).
    #[arg(long = "sm")]
    split_mode: Vec<String>,
    /// Main GPU.
    #[arg(long = "mg")]
    main_gpu: Vec<String>,
    /// KV cache on host (0/1).
    #[arg(long = "nkvo")]
    nkvo: Vec<String>,
    /// Flash attention (on/off/auto or 1/0/-1).
    #[arg(long = "fa")]
    fa: Vec<String>,
    /// Tensor split, e.g. 3/1 (lists with commas).
    #[arg(long = "ts")]
    ts: Vec<String>,
    /// Memory-map the model (0/1).
    #[arg(long = "mmp")]
    mmp: Vec<String>,
    /// Embeddings (0/1).
    #[arg(long = "embd")]
    embd: Vec<String>,
    /// Devices, `/` separated (lists with commas).
    #[arg(long = "dev")]
    dev: Vec<String>,
    /// Repetitions.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    reps: u32,
    /// Seconds to wait before each test.
    #[arg(long = "delay", default_value_t = 0)]
    delay: u64,
    /// Thread priority (-1..3).
    #[arg(long = "prio", default_value_t = 0, allow_hyphen_values = true)]
    prio: i32,
    /// Skip the warmup run.
    #[arg(long = "no-warmup")]
    no_warmup: bool,
    /// Output format on stdout: md, csv, json, jsonl, sql.
    #[arg(short = 'o', long = "output", default_value = "md")]
    output: String,
    /// Output format on stderr (none, md, csv, json, jsonl, sql).
    #[arg(long = "oe", default_value = "none")]
    output_err: String,
    /// Show a progress bar on stderr.
    #[arg(long = "progress")]
    progress: bool,
    /// Verbose: llama.cpp's log on stderr.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Seed of the random prompt tokens.
    #[arg(long = "seed", default_value_t = 1234)]
    seed: u64,
    /// Append each record (all fields) to this JSONL file as soon as it is measured.
    #[arg(long = "save-jsonl")]
    save_jsonl: Option<PathBuf>,
    /// Synthetic preset used without -m.
    #[arg(long = "preset")]
    preset: Option<String>,
    /// Quantization of the synthetic model used without -m.
    #[arg(long = "quant")]
    quant: Option<String>,
}

fn split(list: &[String]) -> Vec<String> {
    list.iter().flat_map(|s| s.split(',').map(|x| x.trim().to_string())).filter(|s| !s.is_empty()).collect()
}

fn ints(name: &str, list: &[String]) -> anyhow::Result<Option<Vec<i64>>> {
    if list.is_empty() {
        return Ok(None);
    }
    Ok(Some(parse_int_list(name, &list.join(","))?))
}

fn u32s(name: &str, list: &[String]) -> anyhow::Result<Option<Vec<u32>>> {
    if list.is_empty() {
        return Ok(None);
    }
    Ok(Some(parse_u32_list(name, &list.join(","))?))
}

fn bool01(name: &str, v: &str) -> anyhow::Result<bool> {
    match v {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => anyhow::bail!("invalid value {v:?} for {name}: expected 0 or 1"),
    }
}

fn build_grid(a: &Args, model: Vec<PathBuf>) -> anyhow::Result<Grid> {
    let mut g = Grid { models: model, ..Grid::default() };
    if let Some(v) = u32s("-p", &a.n_prompt)? {
        g.n_prompt = v;
    }
    if let Some(v) = u32s("-n", &a.n_gen)? {
        g.n_gen = v;
    }
    for pg in &a.pg {
        let (p, n) = pg.split_once(',').ok_or_else(|| anyhow::anyhow!("-pg expects pp,tg, got {pg:?}"))?;
        g.n_pg.push((p.trim().parse()?, n.trim().parse()?));
    }
    if let Some(v) = u32s("-d", &a.n_depth)? {
        g.n_depth = v;
    }
    if let Some(v) = u32s("-b", &a.n_batch)? {
        g.n_batch = v;
    }
    if let Some(v) = u32s("-ub", &a.n_ubatch)? {
        g.n_ubatch = v;
    }
    let types = |name: &str, l: &[String]| -> anyhow::Result<Vec<GgmlType>> {
        split(l).iter().map(|t| GgmlType::from_name(t).ok_or_else(|| anyhow::anyhow!("unknown {name} type {t:?}"))).collect()
    };
    if !a.type_k.is_empty() {
        g.type_k = types("-ctk", &a.type_k)?;
    }
    if !a.type_v.is_empty() {
        g.type_v = types("-ctv", &a.type_v)?;
    }
    if let Some(v) = u32s("-t", &a.threads)? {
        g.n_threads = v;
    }
    if !a.cpu_mask.is_empty() {
        g.cpu_mask = split(&a.cpu_mask);
    }
    if !a.cpu_strict.is_empty() {
        g.cpu_strict = split(&a.cpu_strict).iter().map(|v| bool01("--cpu-strict", v)).collect::<anyhow::Result<_>>()?;
    }
    if let Some(v) = u32s("--poll", &a.poll)? {
        g.poll = v;
    }
    if let Some(v) = ints("-ngl", &a.ngl)? {
        g.n_gpu_layers = v.into_iter().map(|x| x as i32).collect();
    }
    if !a.split_mode.is_empty() {
        g.split_mode = split(&a.split_mode)
            .iter()
            .map(|s| SplitMode::from_name(s).ok_or_else(|| anyhow::anyhow!("invalid -sm {s:?}: none, layer, row, tensor")))
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(v) = ints("-mg", &a.main_gpu)? {
        g.main_gpu = v.into_iter().map(|x| x as i32).collect();
    }
    if !a.nkvo.is_empty() {
        g.no_kv_offload = split(&a.nkvo).iter().map(|v| bool01("-nkvo", v)).collect::<anyhow::Result<_>>()?;
    }
    if !a.fa.is_empty() {
        g.flash_attn = split(&a.fa)
            .iter()
            .map(|v| match v.as_str() {
                "1" | "on" | "true" | "enabled" => Ok(FlashAttn::On),
                "0" | "off" | "false" | "disabled" => Ok(FlashAttn::Off),
                "-1" | "auto" => Ok(FlashAttn::Auto),
                _ => anyhow::bail!("invalid -fa {v:?}: on, off or auto"),
            })
            .collect::<anyhow::Result<_>>()?;
    }
    if !a.ts.is_empty() {
        g.tensor_split = split(&a.ts)
            .iter()
            .map(|t| t.split(['/', ';']).map(|x| x.parse::<f32>().map_err(|e| anyhow::anyhow!("-ts {t:?}: {e}"))).collect())
            .collect::<anyhow::Result<_>>()?;
    }
    if !a.mmp.is_empty() {
        g.use_mmap = split(&a.mmp).iter().map(|v| bool01("-mmp", v).map(Some)).collect::<anyhow::Result<_>>()?;
    }
    if !a.embd.is_empty() {
        g.embeddings = split(&a.embd).iter().map(|v| bool01("-embd", v)).collect::<anyhow::Result<_>>()?;
    }
    if !a.dev.is_empty() {
        g.devices = split(&a.dev)
            .iter()
            .map(|d| if d == "auto" { Vec::new() } else { d.split('/').map(str::to_string).collect() })
            .collect();
    }
    Ok(g)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args()
        .map(|a| if SINGLE_DASH.contains(&a.as_str()) { format!("-{a}") } else { a })
        .collect();
    let args = Args::parse_from(argv);
    if args.verbose {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("llama.cpp=debug").init();
    }
    let backend = Backend::init()?;
    let models = if args.model.is_empty() {
        let preset = args.preset.as_deref().map(benchkit::synth::Preset::from_name).transpose()?;
        let quant = args.quant.as_deref().map(benchkit::quantize::Quant::from_name).transpose()?;
        let spec = benchkit::synth::preset_spec(preset.unwrap_or(benchkit::synth::DEFAULT_PRESET), benchkit::synth::DEFAULT_SEED);
        eprintln!("no -m given: using the embedded synthetic model {} (generated once, cached)", spec.name);
        vec![benchkit::synth::cached_model(&backend, &spec, Some(quant.unwrap_or(benchkit::synth::DEFAULT_QUANT)))?]
    } else {
        args.model.clone()
    };
    let grid = build_grid(&args, models)?;
    let settings = RunSettings {
        repetitions: args.reps.max(1),
        delay_secs: args.delay,
        no_warmup: args.no_warmup,
        priority: Priority::from_level(args.prio).ok_or_else(|| anyhow::anyhow!("--prio must be -1..3"))?,
        seed: args.seed,
    };
    let format: OutputFormat = args.output.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let format_err: Option<OutputFormat> = match args.output_err.as_str() {
        "none" => None,
        f => Some(f.parse().map_err(|e: String| anyhow::anyhow!(e))?),
    };

    let points = grid.points()?;
    let bar = ProgressBar::new(points.len() as u64 * u64::from(settings.repetitions));
    if args.progress {
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} reps {msg}")?);
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let sweep = Sweep::from_points(&backend, points, settings).on_progress(|p| match p {
        Progress::Start { index, total, test } => bar.set_message(format!("point {}/{total}: {test}", index + 1)),
        Progress::Repetition { .. } => bar.inc(1),
        _ => {}
    });
    let columns = MdColumns::from_records(&sweep.planned_records());
    let mut out = Writer::new(std::io::stdout().lock(), format, columns.clone());
    let mut err_out = format_err.map(|f| Writer::new(std::io::stderr(), f, columns));
    let mut jsonl = match &args.save_jsonl {
        Some(p) => Some(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    out.write_header()?;
    if let Some(w) = err_out.as_mut() {
        w.write_header()?;
    }
    let mut failed = 0;
    for record in sweep {
        if let Some(f) = jsonl.as_mut() {
            writeln!(f, "{}", serde_json::to_string(&record)?)?;
            f.flush()?;
        }
        if record.status == Status::Failed {
            failed += 1;
            bar.suspend(|| eprintln!("{} failed: {}", record.test, record.error.as_deref().unwrap_or("")));
        }
        bar.suspend(|| write_both(&mut out, err_out.as_mut(), &record))?;
    }
    bar.finish_and_clear();
    out.write_footer()?;
    if let Some(w) = err_out.as_mut() {
        w.write_footer()?;
    }
    if failed > 0 {
        eprintln!("{failed} grid point(s) failed: json, jsonl and md carry their errors; csv and sql leave them out");
    }
    Ok(())
}

fn write_both<W: Write, E: Write>(out: &mut Writer<W>, err: Option<&mut Writer<E>>, r: &BenchRecord) -> std::io::Result<()> {
    out.write_record(r)?;
    if let Some(e) = err {
        e.write_record(r)?;
    }
    Ok(())
}
