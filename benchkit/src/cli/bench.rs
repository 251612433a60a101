//! `benchkit bench`: llama-bench's flags, spellings and defaults, as a [`BenchConfig`].
//!
//! Extra flags: `--seed N` (random prompt tokens), `--save-jsonl FILE` (every record, with
//! benchkit's fields, appended as it is measured), `--preset NAME` / `--quant Q` (the synthetic
//! model used without `-m`), `-mmp 0/1` (older llama-bench's, as `-lm none/mmap`). The Hugging
//! Face flags (`-hf`, `-hff`, `-hft`, `--offline`) are refused: a benchmark machine reaches no
//! model hub, models come from `-m`.

use super::{normalize_argv, CliError};
use crate::bench::output::OutputFormat;
use crate::bench::{
    parse_bool_list, parse_device_lists, parse_fit_ctx, parse_fit_targets, parse_int_list, parse_lazy_modes,
    parse_load_modes, parse_tensor_overrides, parse_u32_list, BenchConfig, Grid, RunConfig,
};
use crate::gguf::GgmlType;
use crate::supervise::Isolation;
use crate::{Backend, LoadMode, Numa, Priority};
use clap::Parser;
use std::path::PathBuf;

/// llama-bench's multi-letter single-dash flags.
const SINGLE_DASH: &[&str] = &[
    "-pg", "-ub", "-ctk", "-ctv", "-ngl", "-ncmoe", "-sm", "-mg", "-nkvo", "-fa", "-ts", "-ot", "-mmp", "-lm", "-lzm",
    "-embd", "-nopo", "-oe", "-dev", "-fitt", "-fitc", "-hf", "-hfr", "-hff", "-hft",
];

/// `benchkit bench`'s flags: llama-bench's, each a list that the grid sweeps.
#[derive(Parser, Debug)]
#[command(
    name = "benchkit bench",
    about = "llama-bench compatible pp/tg benchmark (benchkit)",
    after_help = "Multi-letter flags also take llama-bench's single dash (-ngl, -ncmoe, -ot, -lm, -nopo, -fitt, ...), \
                  and --long_names with '_'. Multiple values can be given for each parameter by separating them \
                  with ',' or by giving the flag several times; ranges: 'first-last', 'first-last+step', \
                  'first-last*mult'."
)]
pub struct BenchArgs {
    /// Model file(s); default: the embedded synthetic model.
    #[arg(short = 'm', long = "model")]
    pub model: Vec<PathBuf>,
    /// Prompt sizes (lists and ranges: 512,1024 or 128-1024*2).
    #[arg(short = 'p', long = "n-prompt")]
    pub n_prompt: Vec<String>,
    /// Generation sizes.
    #[arg(short = 'n', long = "n-gen")]
    pub n_gen: Vec<String>,
    /// Prompt+generation pairs `pp,tg`.
    #[arg(long = "pg")]
    pub pg: Vec<String>,
    /// Depths.
    #[arg(short = 'd', long = "n-depth")]
    pub n_depth: Vec<String>,
    /// Logical batch sizes.
    #[arg(short = 'b', long = "batch-size")]
    pub n_batch: Vec<String>,
    /// Physical batch sizes.
    #[arg(long = "ub", visible_alias = "ubatch-size")]
    pub n_ubatch: Vec<String>,
    /// K cache types.
    #[arg(long = "ctk", visible_alias = "cache-type-k")]
    pub type_k: Vec<String>,
    /// V cache types.
    #[arg(long = "ctv", visible_alias = "cache-type-v")]
    pub type_v: Vec<String>,
    /// Threads.
    #[arg(short = 't', long = "threads")]
    pub threads: Vec<String>,
    /// CPU masks (hex).
    #[arg(short = 'C', long = "cpu-mask")]
    pub cpu_mask: Vec<String>,
    /// Strict CPU placement (0/1 lists).
    #[arg(long = "cpu-strict")]
    pub cpu_strict: Vec<String>,
    /// Polling levels 0..100.
    #[arg(long = "poll")]
    pub poll: Vec<String>,
    /// GPU layers.
    #[arg(long = "ngl", visible_alias = "n-gpu-layers", allow_hyphen_values = true)]
    pub ngl: Vec<String>,
    /// Layers whose MoE expert tensors stay on the CPU (lists and ranges; default 0).
    #[arg(long = "ncmoe", visible_alias = "n-cpu-moe")]
    pub n_cpu_moe: Vec<String>,
    /// Split modes (none, layer, row, tensor).
    #[arg(long = "sm", visible_alias = "split-mode")]
    pub split_mode: Vec<String>,
    /// Main GPU.
    #[arg(long = "mg", visible_alias = "main-gpu")]
    pub main_gpu: Vec<String>,
    /// KV cache on host (0/1).
    #[arg(long = "nkvo", visible_alias = "no-kv-offload")]
    pub nkvo: Vec<String>,
    /// Flash attention (on/off/auto or 1/0/-1).
    #[arg(long = "fa", visible_alias = "flash-attn", allow_hyphen_values = true)]
    pub fa: Vec<String>,
    /// Tensor split, e.g. 3/1 (lists with commas).
    #[arg(long = "ts", visible_alias = "tensor-split")]
    pub ts: Vec<String>,
    /// Tensor buffer-type overrides `<tensor name pattern>=<buffer type>;...`; `,` separates
    /// the sets to sweep (default: none).
    #[arg(long = "ot", visible_alias = "override-tensor")]
    pub ot: Vec<String>,
    /// Load modes: auto, none, mmap, mlock, mmap+mlock, dio (default auto).
    #[arg(long = "lm", visible_alias = "load-mode")]
    pub load_mode: Vec<String>,
    /// Lazy tensor reading: on, auto, off (default auto).
    #[arg(long = "lzm", visible_alias = "lazy-mode")]
    pub lazy_mode: Vec<String>,
    /// Memory-map the model (0/1): older llama-bench's flag, `-lm mmap` / `-lm none`.
    #[arg(long = "mmp")]
    pub mmp: Vec<String>,
    /// Embeddings (0/1).
    #[arg(long = "embd", visible_alias = "embeddings")]
    pub embd: Vec<String>,
    /// Keep host tensor ops on the host, no op offload (0/1, default 0).
    #[arg(long = "nopo", visible_alias = "no-op-offload")]
    pub nopo: Vec<String>,
    /// Bypass the host buffer so extra buffer types can be used (0/1, default 0).
    #[arg(long = "no-host")]
    pub no_host: Vec<String>,
    /// Repack weights into the CPU's extra buffer types (0/1, default 1).
    #[arg(long = "repack")]
    pub repack: Vec<String>,
    /// Devices: `dev0/dev1/...`, `auto` or `none`; `,` separates the sets to sweep.
    #[arg(long = "dev", visible_alias = "device")]
    pub dev: Vec<String>,
    /// Fit the model to device memory leaving this many MiB per device (default: off).
    #[arg(long = "fitt", visible_alias = "fit-target")]
    pub fit_target: Vec<String>,
    /// Smallest context for --fit-target (default: off).
    #[arg(long = "fitc", visible_alias = "fit-ctx")]
    pub fit_ctx: Vec<String>,
    /// Measure in this process instead of supervised worker processes (by default a point that
    /// crashes llama.cpp, or runs past --timeout, is recorded as crashed/timeout and the sweep
    /// goes on with a fresh worker).
    #[arg(long = "in-process")]
    pub in_process: bool,
    /// Per-point timeout in seconds for supervised sweeps (default: none).
    #[arg(long = "timeout", value_name = "SECS", conflicts_with = "in_process")]
    pub timeout: Option<f64>,
    /// NUMA mode: distribute, isolate, numactl (default: disabled).
    #[arg(long = "numa")]
    pub numa: Option<String>,
    /// List the available devices and exit.
    #[arg(long = "list-devices")]
    pub list_devices: bool,
    /// Show the llama.cpp version and build and exit.
    #[arg(long = "version")]
    pub version: bool,
    /// Hugging Face repository (refused: no model hub is reachable; pass -m).
    #[arg(long = "hf", visible_aliases = ["hfr", "hf-repo"])]
    pub hf_repo: Vec<String>,
    /// Hugging Face file (refused, as -hf).
    #[arg(long = "hff", visible_alias = "hf-file")]
    pub hf_file: Vec<String>,
    /// Hugging Face token (refused, as -hf).
    #[arg(long = "hft", visible_alias = "hf-token")]
    pub hf_token: Option<String>,
    /// Hugging Face offline cache mode (refused, as -hf).
    #[arg(long = "offline")]
    pub offline: bool,
    /// Repetitions.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub reps: u32,
    /// Seconds to wait before each test.
    #[arg(long = "delay", default_value_t = 0)]
    pub delay: u64,
    /// Thread priority (-1..3).
    #[arg(long = "prio", default_value_t = 0, allow_hyphen_values = true)]
    pub prio: i32,
    /// Skip the warmup run.
    #[arg(long = "no-warmup")]
    pub no_warmup: bool,
    /// Output format on stdout: md, csv, json, jsonl, sql.
    #[arg(short = 'o', long = "output", default_value = "md")]
    pub output: String,
    /// Output format on stderr (none, md, csv, json, jsonl, sql).
    #[arg(long = "oe", visible_alias = "output-err", default_value = "none")]
    pub output_err: String,
    /// Show a progress bar on stderr.
    #[arg(long = "progress")]
    pub progress: bool,
    /// Verbose: llama.cpp's log on stderr.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Seed of the random prompt tokens.
    #[arg(long = "seed", default_value_t = 1234)]
    pub seed: u64,
    /// Append each record (all fields) to this JSONL file as soon as it is measured.
    #[arg(long = "save-jsonl")]
    pub save_jsonl: Option<PathBuf>,
    /// Synthetic preset used without -m.
    #[arg(long = "preset")]
    pub preset: Option<String>,
    /// Quantization of the synthetic model used without -m.
    #[arg(long = "quant")]
    pub quant: Option<String>,
    /// Telemetry.
    #[command(flatten)]
    pub telemetry: super::TelemetryArgs,
    /// The results store.
    #[cfg(feature = "store")]
    #[command(flatten)]
    pub store: super::store::StoreOut,
}

/// Every occurrence's comma-separated items, trimmed, empty ones dropped.
fn split(list: &[String]) -> Vec<String> {
    list.iter().flat_map(|s| s.split(',').map(|x| x.trim().to_string())).filter(|s| !s.is_empty()).collect()
}

/// A list flag's values through `parse`, every occurrence joined; `None` when it was not given.
fn given<T, E>(list: &[String], parse: impl FnOnce(&str) -> Result<T, E>) -> Result<Option<T>, E> {
    if list.is_empty() {
        Ok(None)
    } else {
        parse(&list.join(",")).map(Some)
    }
}

fn each<T: std::str::FromStr>(list: &[String]) -> Result<Vec<T>, T::Err> {
    split(list).iter().map(|s| s.parse()).collect()
}

impl BenchArgs {
    /// Parses `argv` (program name first), llama-bench's single-dash and `_` spellings
    /// included.
    ///
    /// # Errors
    /// clap's error (its `exit()` prints usage), for unknown flags and `--help`.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(normalize_argv(argv, SINGLE_DASH))
    }

    /// Refuses the Hugging Face flags.
    ///
    /// # Errors
    /// [`CliError::Refused`] when any of them is given.
    pub fn refuse_model_hub(&self) -> Result<(), CliError> {
        if !self.hf_repo.is_empty() || !self.hf_file.is_empty() || self.hf_token.is_some() || self.offline {
            return Err(CliError::Refused(
                "-hf/-hff/-hft/--offline download models from Hugging Face, and no model hub can be reached \
                 from a benchmark machine offline: pass -m with a local GGUF file",
            ));
        }
        Ok(())
    }

    /// `--numa`, to apply with [`Backend::init_numa`] before any model loads.
    ///
    /// # Errors
    /// [`CliError::Value`] for an unknown mode.
    pub fn numa(&self) -> Result<Numa, CliError> {
        Ok(self.numa.as_deref().map(str::parse).transpose()?.unwrap_or(Numa::Disabled))
    }

    /// The `-m` models, or the embedded synthetic model (`--preset`, `--quant`), generated on
    /// first use and cached; the second value names the synthetic model when one is used.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for an unknown preset or quantization, or a model that cannot be
    /// generated.
    pub fn models(&self, backend: &Backend) -> Result<(Vec<PathBuf>, Option<String>), CliError> {
        if !self.model.is_empty() {
            return Ok((self.model.clone(), None));
        }
        let preset = self.preset.as_deref().map(crate::synth::Preset::from_name).transpose();
        let preset = preset.map_err(|e| CliError::invalid("--preset", e))?;
        let quant = self.quant.as_deref().map(crate::quantize::Quant::from_name).transpose();
        let quant = quant.map_err(|e| CliError::invalid("--quant", e))?;
        let spec =
            crate::synth::preset_config(preset.unwrap_or(crate::synth::DEFAULT_PRESET), crate::synth::DEFAULT_SEED);
        let path = crate::synth::cached_model(backend, &spec, Some(quant.unwrap_or(crate::synth::DEFAULT_QUANT)))
            .map_err(|e| CliError::invalid("--preset", e))?;
        Ok((vec![path], Some(spec.name)))
    }

    /// The grid over `models` (see [`BenchArgs::models`]), every list flag applied.
    ///
    /// # Errors
    /// [`CliError`] for any value llama-bench would reject.
    pub fn grid(&self, models: Vec<PathBuf>) -> Result<Grid, CliError> {
        let mut g = Grid { models, ..Grid::default() };
        let u32s = |name: &str, l: &[String]| given(l, |s| parse_u32_list(name, s));
        let ints = |name: &str, l: &[String]| given(l, |s| parse_int_list(name, s));
        let bools = |name: &str, l: &[String]| given(l, |s| parse_bool_list(name, s));
        let i32s = |name: &str, l: &[String]| -> Result<Option<Vec<i32>>, CliError> {
            let Some(v) = ints(name, l)? else { return Ok(None) };
            let v = v.into_iter().map(i32::try_from).collect::<Result<_, _>>();
            v.map(Some).map_err(|e| CliError::Invalid { flag: "-ngl/-mg", reason: e.to_string() })
        };
        if let Some(v) = u32s("-p", &self.n_prompt)? {
            g.n_prompt = v;
        }
        if let Some(v) = u32s("-n", &self.n_gen)? {
            g.n_gen = v;
        }
        for pg in &self.pg {
            let pair = pg.split_once(',').and_then(|(p, n)| Some((p.trim().parse().ok()?, n.trim().parse().ok()?)));
            g.n_pg.push(pair.ok_or_else(|| CliError::invalid("-pg", format!("expects pp,tg, got {pg:?}")))?);
        }
        if let Some(v) = u32s("-d", &self.n_depth)? {
            g.n_depth = v;
        }
        if let Some(v) = u32s("-b", &self.n_batch)? {
            g.n_batch = v;
        }
        if let Some(v) = u32s("-ub", &self.n_ubatch)? {
            g.n_ubatch = v;
        }
        if !self.type_k.is_empty() {
            g.type_k = each::<GgmlType>(&self.type_k)?;
        }
        if !self.type_v.is_empty() {
            g.type_v = each::<GgmlType>(&self.type_v)?;
        }
        if let Some(v) = u32s("-t", &self.threads)? {
            g.n_threads = v;
        }
        if !self.cpu_mask.is_empty() {
            g.cpu_mask = split(&self.cpu_mask);
        }
        if let Some(v) = bools("--cpu-strict", &self.cpu_strict)? {
            g.cpu_strict = v;
        }
        if let Some(v) = u32s("--poll", &self.poll)? {
            g.poll = v;
        }
        if let Some(v) = i32s("-ngl", &self.ngl)? {
            g.n_gpu_layers = v;
        }
        if let Some(v) = u32s("-ncmoe", &self.n_cpu_moe)? {
            g.n_cpu_moe = v;
        }
        if !self.split_mode.is_empty() {
            g.split_mode = each(&self.split_mode)?;
        }
        if let Some(v) = i32s("-mg", &self.main_gpu)? {
            g.main_gpu = v;
        }
        if let Some(v) = bools("-nkvo", &self.nkvo)? {
            g.no_kv_offload = v;
        }
        if !self.fa.is_empty() {
            g.flash_attn = each(&self.fa)?;
        }
        if !self.ts.is_empty() {
            g.tensor_split = split(&self.ts)
                .iter()
                .map(|t| {
                    t.split(['/', ';'])
                        .map(|x| x.parse::<f32>().map_err(|e| CliError::invalid("-ts", format!("{t:?}: {e}"))))
                        .collect()
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = given(&self.ot, parse_tensor_overrides)? {
            g.tensor_buft_overrides = v;
        }
        // -lm, then older llama-bench's -mmp as the load modes it stood for.
        let mut load_modes = given(&self.load_mode, parse_load_modes)?.unwrap_or_default();
        if let Some(v) = bools("-mmp", &self.mmp)? {
            load_modes.extend(v.into_iter().map(|on| if on { LoadMode::Mmap } else { LoadMode::None }));
        }
        if !load_modes.is_empty() {
            g.load_mode = load_modes;
        }
        if let Some(v) = given(&self.lazy_mode, parse_lazy_modes)? {
            g.lazy_mode = v;
        }
        if let Some(v) = bools("-embd", &self.embd)? {
            g.embeddings = v;
        }
        if let Some(v) = bools("-nopo", &self.nopo)? {
            g.no_op_offload = v;
        }
        if let Some(v) = bools("--no-host", &self.no_host)? {
            g.no_host = v;
        }
        if let Some(v) = bools("--repack", &self.repack)? {
            g.repack = v;
        }
        if let Some(v) = given(&self.dev, parse_device_lists)? {
            g.devices = v;
        }
        if let Some(v) = given(&self.fit_target, parse_fit_targets)? {
            g.fit_target = v;
        }
        if let Some(v) = given(&self.fit_ctx, parse_fit_ctx)? {
            g.fit_min_ctx = v;
        }
        Ok(g)
    }

    /// How each test runs: `-r` (at least 1), `--delay`, `--no-warmup`, `--prio`, `--seed`,
    /// `--numa`.
    ///
    /// # Errors
    /// [`CliError`] for a priority outside -1..3 or an unknown NUMA mode.
    pub fn run_config(&self) -> Result<RunConfig, CliError> {
        Ok(RunConfig {
            repetitions: self.reps.max(1),
            delay_secs: self.delay,
            no_warmup: self.no_warmup,
            priority: Priority::from_level(self.prio)
                .ok_or_else(|| CliError::invalid("--prio", format!("{} is not in -1..3", self.prio)))?,
            seed: self.seed,
            numa: self.numa()?,
        })
    }

    /// Supervised workers (with `--timeout`) unless `--in-process`.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a timeout that is not a number of seconds > 0.
    pub fn isolation(&self) -> Result<Isolation, CliError> {
        super::isolation(self.in_process, "--timeout", self.timeout)
    }

    /// The whole benchmark: every value checked first, then the models resolved (see
    /// [`BenchArgs::models`], whose synthetic model's name comes back too) and the grid's
    /// devices and overrides checked against the registry.
    ///
    /// # Errors
    /// [`CliError`] for any invalid value.
    pub fn config(&self, backend: &Backend) -> Result<(BenchConfig, Option<String>), CliError> {
        let mut grid = self.grid(Vec::new())?;
        let (run, isolation) = (self.run_config()?, self.isolation()?);
        let (models, synthetic) = self.models(backend)?;
        grid.models = models;
        grid.check_against_registry(backend)?;
        let telemetry = self.telemetry.config()?;
        Ok((BenchConfig { grid, run, isolation, cancel: None, telemetry }, synthetic))
    }

    /// `-o` and `--oe` (`none`: no stderr output).
    ///
    /// # Errors
    /// [`CliError::Value`] for an unknown format.
    pub fn output_formats(&self) -> Result<(OutputFormat, Option<OutputFormat>), CliError> {
        let err = match self.output_err.as_str() {
            "none" => None,
            f => Some(f.parse()?),
        };
        Ok((self.output.parse()?, err))
    }
}

#[cfg(test)]
mod tests {
    use super::BenchArgs;
    use crate::bench::output::OutputFormat;
    use crate::{FlashAttn, LoadMode, Priority, SplitMode};
    use std::path::PathBuf;

    fn args(flags: &str) -> BenchArgs {
        let argv = std::iter::once("benchkit bench".to_string()).chain(flags.split_whitespace().map(String::from));
        BenchArgs::try_parse_argv(argv).unwrap()
    }

    fn grid(flags: &str) -> crate::bench::Grid {
        args(flags).grid(vec![PathBuf::from("m.gguf")]).unwrap()
    }

    #[test]
    fn defaults_are_llama_benchs() {
        let a = args("");
        let (g, run) = (a.grid(vec![]).unwrap(), a.run_config().unwrap());
        let d = crate::bench::Grid::default();
        assert_eq!((g.n_prompt, g.n_gen, g.n_batch, g.n_ubatch), (d.n_prompt, d.n_gen, d.n_batch, d.n_ubatch));
        assert_eq!((run.repetitions, run.seed, run.priority), (5, 1234, Priority::Normal));
        assert_eq!(a.output_formats().unwrap(), (OutputFormat::Md, None));
        assert!(matches!(a.isolation().unwrap(), crate::supervise::Isolation::Worker(_)));
    }

    #[test]
    fn lists_ranges_and_repeated_flags_accumulate() {
        let g = grid("-p 128-512*2 -p 1000 -n 0 -t 1,2 -b 64 -ub 32 -ctk q8_0,f16 -ngl -1,99 -sm row -fa 1,off");
        assert_eq!(g.n_prompt, [128, 256, 512, 1000]);
        assert_eq!((g.n_gen, g.n_threads, g.n_batch, g.n_ubatch), (vec![0], vec![1, 2], vec![64], vec![32]));
        assert_eq!(g.type_k.iter().map(|t| t.to_string()).collect::<Vec<_>>(), ["q8_0", "f16"]);
        assert_eq!((g.n_gpu_layers, g.split_mode), (vec![-1, 99], vec![SplitMode::Row]));
        assert_eq!(g.flash_attn, [FlashAttn::On, FlashAttn::Off]);
    }

    #[test]
    fn underscore_long_names_and_pg_pairs() {
        let g = grid("--n_prompt 64 -pg 512,128 --n-depth 0,256 -ts 3/1,1;1");
        assert_eq!((g.n_prompt, g.n_pg, g.n_depth), (vec![64], vec![(512, 128)], vec![0, 256]));
        assert_eq!(g.tensor_split, [vec![3.0, 1.0], vec![1.0, 1.0]]);
    }

    #[test]
    fn mmp_stands_for_the_load_modes_it_meant() {
        assert_eq!(grid("-mmp 0,1").load_mode, [LoadMode::None, LoadMode::Mmap]);
        assert_eq!(grid("-lm mlock -mmp 1").load_mode, [LoadMode::Mlock, LoadMode::Mmap]);
    }

    #[test]
    fn bad_values_are_typed_errors_naming_the_flag() {
        for (flags, needle) in [
            ("-p 12x", "-p"),
            ("-pg 512", "-pg"),
            ("-fa maybe", "flash attention"),
            ("-ctk q9", "ggml type"),
            ("--cpu-strict 2", "--cpu-strict"),
            ("-ts 1/x", "-ts"),
        ] {
            let e = args(flags).grid(vec![]).unwrap_err().to_string();
            assert!(e.contains(needle), "{flags}: {e}");
        }
        assert!(args("--prio 7").run_config().unwrap_err().to_string().contains("--prio"));
        assert!(args("--numa sideways").run_config().is_err());
        assert!(args("-o yaml").output_formats().is_err());
        assert_eq!(args("--oe csv").output_formats().unwrap().1, Some(OutputFormat::Csv));
    }

    #[test]
    fn the_model_hub_is_refused_and_timeouts_need_a_worker() {
        assert!(args("-hf org/model").refuse_model_hub().is_err());
        assert!(args("-m m.gguf").refuse_model_hub().is_ok());
        let argv = ["benchkit bench", "--in-process", "--timeout", "3"].map(String::from);
        assert!(BenchArgs::try_parse_argv(argv).is_err());
        assert!(args("--timeout=-1").isolation().is_err());
        match args("--timeout 2.5").isolation().unwrap() {
            crate::supervise::Isolation::Worker(t) => {
                assert_eq!(t.timeout, Some(std::time::Duration::from_millis(2500)))
            }
            other => panic!("{other:?}"),
        }
    }
}
