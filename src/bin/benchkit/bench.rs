//! A command-line front end with llama-bench's flags, printing llama-bench's output formats.
//!
//! ```sh
//! benchkit bench -m model.gguf -p 512 -n 128 -t 2 -o json
//! benchkit bench -t 1,2 -b 64-512*2 -o md      # embedded default model
//! ```
//! Extra flags: `--seed N` (random prompt tokens), `--save-jsonl FILE` (append every record,
//! with benchkit's fields, as soon as it is measured), `--preset NAME` / `--quant Q` (which
//! synthetic model to use without `-m`), `-mmp 0/1` (older llama-bench's, as `-lm none/mmap`).
//! The Hugging Face flags (`-hf`, `-hff`, `-hft`, `--offline`) are refused: a benchmark
//! machine reaches no model hub, models come from `-m`.

use benchkit::bench::output::{MdColumns, OutputFormat, Writer};
use benchkit::bench::{
    parse_bool_list, parse_device_lists, parse_fit_ctx, parse_fit_targets, parse_int_list, parse_lazy_modes,
    parse_load_modes, parse_numa, parse_tensor_overrides, parse_u32_list, BenchRecord, Grid, Progress, RunSettings,
    SupervisedSweep, Sweep,
};
use benchkit::gguf::GgmlType;
use benchkit::supervise::TrialOptions;
use benchkit::{Backend, BuildInfo, LoadMode, Numa, Priority};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;

/// llama-bench's multi-letter single-dash flags, rewritten to `--name` for clap.
const SINGLE_DASH: &[&str] = &[
    "-pg", "-ub", "-ctk", "-ctv", "-ngl", "-ncmoe", "-sm", "-mg", "-nkvo", "-fa", "-ts", "-ot", "-mmp", "-lm", "-lzm",
    "-embd", "-nopo", "-oe", "-dev", "-fitt", "-fitc", "-hf", "-hfr", "-hff", "-hft",
];

/// llama-bench's argv as clap reads it: multi-letter single-dash flags become `--name`, and
/// `_` in a `--long_name` becomes `-` (llama-bench takes `--n_prompt` for `--n-prompt`).
fn normalize_arg(a: String) -> String {
    if SINGLE_DASH.contains(&a.as_str()) {
        return format!("-{a}");
    }
    match a.strip_prefix("--") {
        Some(rest) => {
            let (name, value) = rest.split_once('=').map_or((rest, None), |(n, v)| (n, Some(v)));
            let name = name.replace('_', "-");
            value.map_or_else(|| format!("--{name}"), |v| format!("--{name}={v}"))
        }
        None => a,
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "benchkit bench",
    about = "llama-bench compatible pp/tg benchmark (benchkit)",
    after_help = "Multi-letter flags also take llama-bench's single dash (-ngl, -ncmoe, -ot, -lm, -nopo, -fitt, ...), \
                  and --long_names with '_'. Multiple values can be given for each parameter by separating them \
                  with ',' or by giving the flag several times; ranges: 'first-last', 'first-last+step', \
                  'first-last*mult'."
)]
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
    #[arg(long = "ub", visible_alias = "ubatch-size")]
    n_ubatch: Vec<String>,
    /// K cache types.
    #[arg(long = "ctk", visible_alias = "cache-type-k")]
    type_k: Vec<String>,
    /// V cache types.
    #[arg(long = "ctv", visible_alias = "cache-type-v")]
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
    #[arg(long = "ngl", visible_alias = "n-gpu-layers", allow_hyphen_values = true)]
    ngl: Vec<String>,
    /// Layers whose MoE expert tensors stay on the CPU (lists and ranges; default 0).
    #[arg(long = "ncmoe", visible_alias = "n-cpu-moe")]
    n_cpu_moe: Vec<String>,
    /// Split modes (none, layer, row, tensor).
    #[arg(long = "sm", visible_alias = "split-mode")]
    split_mode: Vec<String>,
    /// Main GPU.
    #[arg(long = "mg", visible_alias = "main-gpu")]
    main_gpu: Vec<String>,
    /// KV cache on host (0/1).
    #[arg(long = "nkvo", visible_alias = "no-kv-offload")]
    nkvo: Vec<String>,
    /// Flash attention (on/off/auto or 1/0/-1).
    #[arg(long = "fa", visible_alias = "flash-attn", allow_hyphen_values = true)]
    fa: Vec<String>,
    /// Tensor split, e.g. 3/1 (lists with commas).
    #[arg(long = "ts", visible_alias = "tensor-split")]
    ts: Vec<String>,
    /// Tensor buffer-type overrides `<tensor name pattern>=<buffer type>;...`; `,` separates
    /// the sets to sweep (default: none).
    #[arg(long = "ot", visible_alias = "override-tensor")]
    ot: Vec<String>,
    /// Load modes: auto, none, mmap, mlock, mmap+mlock, dio (default auto).
    #[arg(long = "lm", visible_alias = "load-mode")]
    load_mode: Vec<String>,
    /// Lazy tensor reading: on, auto, off (default auto).
    #[arg(long = "lzm", visible_alias = "lazy-mode")]
    lazy_mode: Vec<String>,
    /// Memory-map the model (0/1): older llama-bench's flag, `-lm mmap` / `-lm none`.
    #[arg(long = "mmp")]
    mmp: Vec<String>,
    /// Embeddings (0/1).
    #[arg(long = "embd", visible_alias = "embeddings")]
    embd: Vec<String>,
    /// Keep host tensor ops on the host, no op offload (0/1, default 0).
    #[arg(long = "nopo", visible_alias = "no-op-offload")]
    nopo: Vec<String>,
    /// Bypass the host buffer so extra buffer types can be used (0/1, default 0).
    #[arg(long = "no-host")]
    no_host: Vec<String>,
    /// Repack weights into the CPU's extra buffer types (0/1, default 1).
    #[arg(long = "repack")]
    repack: Vec<String>,
    /// Devices: `dev0/dev1/...`, `auto` or `none`; `,` separates the sets to sweep.
    #[arg(long = "dev", visible_alias = "device")]
    dev: Vec<String>,
    /// Fit the model to device memory leaving this many MiB per device (default: off).
    #[arg(long = "fitt", visible_alias = "fit-target")]
    fit_target: Vec<String>,
    /// Smallest context for --fit-target (default: off).
    #[arg(long = "fitc", visible_alias = "fit-ctx")]
    fit_ctx: Vec<String>,
    /// Measure in this process instead of supervised worker processes (by default a point that
    /// crashes llama.cpp, or runs past --timeout, is recorded as crashed/timeout and the sweep
    /// goes on with a fresh worker).
    #[arg(long = "in-process")]
    in_process: bool,
    /// Per-point timeout in seconds for supervised sweeps (default: none).
    #[arg(long = "timeout", value_name = "SECS", conflicts_with = "in_process")]
    timeout: Option<f64>,
    /// NUMA mode: distribute, isolate, numactl (default: disabled).
    #[arg(long = "numa")]
    numa: Option<String>,
    /// List the available devices and exit.
    #[arg(long = "list-devices")]
    list_devices: bool,
    /// Show the llama.cpp version and build and exit.
    #[arg(long = "version")]
    version: bool,
    /// Hugging Face repository (refused: no model hub is reachable; pass -m).
    #[arg(long = "hf", visible_aliases = ["hfr", "hf-repo"])]
    hf_repo: Vec<String>,
    /// Hugging Face file (refused, as -hf).
    #[arg(long = "hff", visible_alias = "hf-file")]
    hf_file: Vec<String>,
    /// Hugging Face token (refused, as -hf).
    #[arg(long = "hft", visible_alias = "hf-token")]
    hf_token: Option<String>,
    /// Hugging Face offline cache mode (refused, as -hf).
    #[arg(long = "offline")]
    offline: bool,
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
    #[arg(long = "oe", visible_alias = "output-err", default_value = "none")]
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

/// A 0/1 flag's values, every occurrence's list joined; `None` when the flag was not given.
fn bools(name: &str, list: &[String]) -> anyhow::Result<Option<Vec<bool>>> {
    if list.is_empty() {
        return Ok(None);
    }
    Ok(Some(parse_bool_list(name, &list.join(","))?))
}

/// Checks device names and override buffer types against the registry before anything runs,
/// as llama-bench does, and spells device names as the registry does (records show those).
fn check_against_registry(backend: &Backend, g: &mut Grid) -> anyhow::Result<()> {
    for d in &mut g.devices {
        *d = d.canonical(backend).map_err(|e| anyhow::anyhow!("invalid -dev {d}: {e}"))?;
    }
    for o in g.tensor_buft_overrides.iter().flatten() {
        o.validate(backend).map_err(|e| anyhow::anyhow!("invalid -ot {}={}: {e}", o.pattern, o.buffer_type))?;
    }
    Ok(())
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
        split(l)
            .iter()
            .map(|t| GgmlType::from_name(t).ok_or_else(|| anyhow::anyhow!("unknown {name} type {t:?}")))
            .collect()
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
    if let Some(v) = bools("--cpu-strict", &a.cpu_strict)? {
        g.cpu_strict = v;
    }
    if let Some(v) = u32s("--poll", &a.poll)? {
        g.poll = v;
    }
    if let Some(v) = ints("-ngl", &a.ngl)? {
        g.n_gpu_layers = v.into_iter().map(|x| x as i32).collect();
    }
    if let Some(v) = u32s("-ncmoe", &a.n_cpu_moe)? {
        g.n_cpu_moe = v;
    }
    if !a.split_mode.is_empty() {
        g.split_mode = split(&a.split_mode).iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    }
    if let Some(v) = ints("-mg", &a.main_gpu)? {
        g.main_gpu = v.into_iter().map(|x| x as i32).collect();
    }
    if let Some(v) = bools("-nkvo", &a.nkvo)? {
        g.no_kv_offload = v;
    }
    if !a.fa.is_empty() {
        g.flash_attn = split(&a.fa).iter().map(|v| v.parse()).collect::<Result<_, _>>()?;
    }
    if !a.ts.is_empty() {
        g.tensor_split = split(&a.ts)
            .iter()
            .map(|t| {
                t.split(['/', ';']).map(|x| x.parse::<f32>().map_err(|e| anyhow::anyhow!("-ts {t:?}: {e}"))).collect()
            })
            .collect::<anyhow::Result<_>>()?;
    }
    if !a.ot.is_empty() {
        g.tensor_buft_overrides = parse_tensor_overrides(&a.ot.join(","))?;
    }
    // -lm, then older llama-bench's -mmp as the load modes it stood for.
    let mut load_modes = if a.load_mode.is_empty() { Vec::new() } else { parse_load_modes(&a.load_mode.join(","))? };
    if let Some(v) = bools("-mmp", &a.mmp)? {
        load_modes.extend(v.into_iter().map(|on| if on { LoadMode::Mmap } else { LoadMode::None }));
    }
    if !load_modes.is_empty() {
        g.load_mode = load_modes;
    }
    if !a.lazy_mode.is_empty() {
        g.lazy_mode = parse_lazy_modes(&a.lazy_mode.join(","))?;
    }
    if let Some(v) = bools("-embd", &a.embd)? {
        g.embeddings = v;
    }
    if let Some(v) = bools("-nopo", &a.nopo)? {
        g.no_op_offload = v;
    }
    if let Some(v) = bools("--no-host", &a.no_host)? {
        g.no_host = v;
    }
    if let Some(v) = bools("--repack", &a.repack)? {
        g.repack = v;
    }
    if !a.dev.is_empty() {
        g.devices = parse_device_lists(&a.dev.join(","))?;
    }
    if !a.fit_target.is_empty() {
        g.fit_target = parse_fit_targets(&a.fit_target.join(","))?;
    }
    if !a.fit_ctx.is_empty() {
        g.fit_min_ctx = parse_fit_ctx(&a.fit_ctx.join(","))?;
    }
    Ok(g)
}

/// `benchkit bench ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let argv: Vec<String> = argv.into_iter().map(normalize_arg).collect();
    let args = Args::parse_from(argv);
    if !args.hf_repo.is_empty() || !args.hf_file.is_empty() || args.hf_token.is_some() || args.offline {
        anyhow::bail!(
            "-hf/-hff/-hft/--offline download models from Hugging Face, and no model hub can be reached from a \
             benchmark machine offline: pass -m with a local GGUF file"
        );
    }
    if args.verbose {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("llama.cpp=debug").init();
    }
    let backend = Backend::init()?;
    if args.version {
        // llama-bench prints its build info to stderr.
        eprint!("{}", BuildInfo::current().version_text());
        return Ok(());
    }
    if args.list_devices {
        print!("{}", benchkit::devices::listing(&backend.devices()));
        return Ok(());
    }
    // Process-wide, before any model is loaded (llama-bench calls it right after backend init).
    let numa = args.numa.as_deref().map(parse_numa).transpose()?.unwrap_or(Numa::Disabled);
    backend.init_numa(numa);
    let models = if args.model.is_empty() {
        let preset = args.preset.as_deref().map(benchkit::synth::Preset::from_name).transpose()?;
        let quant = args.quant.as_deref().map(benchkit::quantize::Quant::from_name).transpose()?;
        let spec = benchkit::synth::preset_spec(
            preset.unwrap_or(benchkit::synth::DEFAULT_PRESET),
            benchkit::synth::DEFAULT_SEED,
        );
        eprintln!("no -m given: using the embedded synthetic model {} (generated once, cached)", spec.name);
        vec![benchkit::synth::cached_model(&backend, &spec, Some(quant.unwrap_or(benchkit::synth::DEFAULT_QUANT)))?]
    } else {
        args.model.clone()
    };
    let mut grid = build_grid(&args, models)?;
    check_against_registry(&backend, &mut grid)?;
    let settings = RunSettings {
        repetitions: args.reps.max(1),
        delay_secs: args.delay,
        no_warmup: args.no_warmup,
        priority: Priority::from_level(args.prio).ok_or_else(|| anyhow::anyhow!("--prio must be -1..3"))?,
        seed: args.seed,
        numa,
    };
    let format: OutputFormat = args.output.parse()?;
    let format_err: Option<OutputFormat> = match args.output_err.as_str() {
        "none" => None,
        f => Some(f.parse()?),
    };

    let points = grid.points()?;
    let bar = ProgressBar::new(points.len() as u64 * u64::from(settings.repetitions));
    if args.progress {
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} reps {msg}")?);
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let on_progress = |p: &Progress| match p {
        Progress::Start { index, total, test } => bar.set_message(format!("point {}/{total}: {test}", index + 1)),
        Progress::Repetition { .. } => bar.inc(1),
        _ => {}
    };
    // Supervised by default: a point that crashes llama.cpp, or runs past --timeout, is a
    // record and the sweep goes on.
    let (columns, sweep): (MdColumns, Box<dyn Iterator<Item = BenchRecord>>) = if args.in_process {
        let sweep = Sweep::from_points(&backend, points, settings).on_progress(on_progress);
        (MdColumns::from_records(&sweep.planned_records()), Box::new(sweep))
    } else {
        let opts = TrialOptions { timeout: args.timeout.map(std::time::Duration::from_secs_f64), ..Default::default() };
        let sweep = SupervisedSweep::from_points(points, settings, opts).on_progress(on_progress);
        (MdColumns::from_records(&sweep.planned_records()), Box::new(sweep))
    };
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
        if !record.status.is_ok() {
            failed += 1;
            bar.suspend(|| {
                eprintln!("{} {}: {}", record.test, record.status.as_str(), record.error.as_deref().unwrap_or(""))
            });
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

fn write_both<W: Write, E: Write>(
    out: &mut Writer<W>,
    err: Option<&mut Writer<E>>,
    r: &BenchRecord,
) -> std::io::Result<()> {
    out.write_record(r)?;
    if let Some(e) = err {
        e.write_record(r)?;
    }
    Ok(())
}
