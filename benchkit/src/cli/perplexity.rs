//! `benchkit perplexity`: llama-perplexity's flags and defaults, as a [`PerplexityJob`].

use super::{normalize_argv, CliError};
use crate::perplexity::{KlBaseHeader, PerplexityConfig, PerplexityJob, PerplexityTask};
use crate::supervise::Isolation;
use crate::{FlashAttn, ModelParams};
use clap::Parser;
use std::path::PathBuf;

/// llama.cpp's multi-letter single-dash flags that llama-perplexity takes.
const SINGLE_DASH: &[&str] = &["-ngl", "-ub", "-fa"];

/// `benchkit perplexity`'s flags.
#[derive(Parser, Debug)]
#[command(name = "benchkit perplexity", about = "Perplexity / KL-divergence as llama-perplexity measures them")]
pub struct PerplexityArgs {
    /// Model path.
    #[arg(short = 'm', long)]
    pub model: PathBuf,
    /// Text file (not needed with --kl-divergence).
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// Chunk length (default 512; with --kl-divergence, the base file's).
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx_size: Option<u32>,
    /// Logical batch size.
    #[arg(short = 'b', long = "batch-size", default_value_t = 2048)]
    pub batch_size: u32,
    /// Physical batch size.
    #[arg(long = "ubatch-size", visible_alias = "ub", default_value_t = 512)]
    pub ubatch_size: u32,
    /// Threads (default: physical cores).
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
    /// Layers to offload to the GPU.
    #[arg(long = "n-gpu-layers", visible_alias = "ngl", alias = "gpu-layers", allow_hyphen_values = true)]
    pub n_gpu_layers: Option<i32>,
    /// Flash attention: on, off or auto.
    #[arg(long = "flash-attn", visible_alias = "fa", default_value = "auto")]
    pub flash_attn: String,
    /// Evaluate at most this many chunks (-1 = all).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub chunks: i64,
    /// Base log-probabilities file: written, or read with --kl-divergence.
    #[arg(long = "kl-divergence-base", visible_alias = "save-all-logits")]
    pub kl_divergence_base: Option<PathBuf>,
    /// Compare the model against --kl-divergence-base.
    #[arg(long = "kl-divergence")]
    pub kl_divergence: bool,
    /// Score after each decode instead of while the next one runs (the default overlaps only
    /// when there are more CPUs than threads).
    #[arg(long, conflicts_with = "overlap")]
    pub no_overlap: bool,
    /// Score while the next batch decodes, even with no CPU to spare.
    #[arg(long)]
    pub overlap: bool,
    /// Run in this process instead of a supervised worker process (by default a llama.cpp
    /// abort or fault is reported with its crash report instead of ending this program).
    #[arg(long)]
    pub in_process: bool,
    /// Kill the run's worker after this many seconds (supervised runs only).
    #[arg(long, value_name = "SECS", conflicts_with = "in_process")]
    pub timeout: Option<f64>,
    /// Print the result record as JSON on stdout (llama-perplexity's text goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Telemetry.
    #[command(flatten)]
    pub telemetry: super::TelemetryArgs,
    /// The results store.
    #[cfg(feature = "store")]
    #[command(flatten)]
    pub store: super::store::StoreOut,
}

impl PerplexityArgs {
    /// Parses `argv` (program name first), `-ngl`, `-ub` and `-fa` included.
    ///
    /// # Errors
    /// clap's error (its `exit()` prints usage), for unknown flags and `--help`.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(normalize_argv(argv, SINGLE_DASH))
    }

    /// The task: KL divergence against the base file, perplexity saving one, or perplexity.
    ///
    /// # Errors
    /// [`CliError::Missing`] for `--kl-divergence` without a base file, or no `-f` otherwise.
    pub fn task(&self) -> Result<PerplexityTask, CliError> {
        if self.kl_divergence {
            let base = self.kl_divergence_base.clone().ok_or(CliError::Missing {
                flag: "--kl-divergence-base",
                why: "--kl-divergence reads the base model's log-probabilities from it",
            })?;
            return Ok(PerplexityTask::KlDivergence { base });
        }
        let text =
            self.file.clone().ok_or(CliError::Missing { flag: "-f", why: "perplexity evaluates the text in it" })?;
        Ok(match self.kl_divergence_base.clone() {
            Some(base) => PerplexityTask::SaveKlBase { text, base },
            None => PerplexityTask::Perplexity { text },
        })
    }

    /// The run's configuration. `base` is the KL base file's header: without `-c`, a KL run
    /// takes its chunk length.
    ///
    /// # Errors
    /// [`CliError`] for an unknown `-fa`.
    pub fn config(&self, base: Option<&KlBaseHeader>) -> Result<PerplexityConfig, CliError> {
        let mut c = PerplexityConfig {
            n_ctx: self.ctx_size.or(base.map(|h| h.n_ctx)).unwrap_or(512),
            n_batch: self.batch_size,
            n_ubatch: self.ubatch_size,
            chunks: usize::try_from(self.chunks).ok().filter(|&c| c > 0),
            flash_attn: self.flash_attn.parse::<FlashAttn>()?,
            ..PerplexityConfig::default()
        };
        if let Some(t) = self.threads {
            c.n_threads = t;
            c.overlap = crate::system::n_cpus_available() > t as usize;
        }
        if self.overlap || self.no_overlap {
            c.overlap = self.overlap;
        }
        Ok(c)
    }

    /// The whole job; for a KL run, the base file's header is read (and returned) first.
    ///
    /// # Errors
    /// [`CliError`] for a missing flag, a bad value, or an unreadable base file.
    pub fn job(&self) -> Result<(PerplexityJob, Option<KlBaseHeader>), CliError> {
        let task = self.task()?;
        let base = match &task {
            PerplexityTask::KlDivergence { base } => {
                Some(KlBaseHeader::read(base).map_err(|e| CliError::invalid("--kl-divergence-base", e))?.0)
            }
            _ => None,
        };
        let mut model_params = ModelParams::default();
        if let Some(n) = self.n_gpu_layers {
            model_params = model_params.n_gpu_layers(n);
        }
        let config = self.config(base.as_ref())?;
        Ok((
            PerplexityJob {
                model: self.model.clone(),
                model_params,
                params: config,
                task,
                telemetry: self.telemetry.config()?,
            },
            base,
        ))
    }

    /// A supervised worker (with `--timeout`) unless `--in-process`.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a timeout that is not a number of seconds > 0.
    pub fn isolation(&self) -> Result<Isolation, CliError> {
        super::isolation(self.in_process, "--timeout", self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::PerplexityArgs;
    use crate::perplexity::{KlBaseHeader, PerplexityTask};
    use crate::FlashAttn;

    fn args(flags: &str) -> PerplexityArgs {
        let argv = std::iter::once("benchkit perplexity".to_string()).chain(flags.split_whitespace().map(String::from));
        PerplexityArgs::try_parse_argv(argv).unwrap()
    }

    #[test]
    fn defaults_are_llama_perplexitys() {
        let a = args("-m m.gguf -f t.txt");
        let c = a.config(None).unwrap();
        assert_eq!((c.n_ctx, c.n_batch, c.n_ubatch, c.chunks, c.flash_attn), (512, 2048, 512, None, FlashAttn::Auto));
        assert_eq!(a.task().unwrap(), PerplexityTask::Perplexity { text: "t.txt".into() });
    }

    #[test]
    fn llama_cpp_spellings_and_the_overlap_rule() {
        let a = args("-m m.gguf -f t.txt -c 128 -b 256 -ub 64 -fa on -ngl 99 --chunks 4 -t 9999");
        let c = a.config(None).unwrap();
        assert_eq!((c.n_ctx, c.n_batch, c.n_ubatch, c.chunks, c.flash_attn), (128, 256, 64, Some(4), FlashAttn::On));
        // More threads than CPUs: nothing to spare for a concurrent scorer.
        assert!(!c.overlap);
        assert!(args("-m m -f t -t 9999 --overlap").config(None).unwrap().overlap);
        assert!(!args("-m m -f t --no-overlap").config(None).unwrap().overlap);
        assert_eq!(args("-m m -f t --chunks -1").config(None).unwrap().chunks, None);
    }

    #[test]
    fn kl_runs_take_the_base_files_chunk_length_and_need_one() {
        let base = KlBaseHeader { path: "b".into(), n_ctx: 96, n_vocab: 10, n_chunk: 2, file_bytes: 0, tokens: vec![] };
        assert_eq!(args("-m m --kl-divergence --kl-divergence-base b").config(Some(&base)).unwrap().n_ctx, 96);
        assert_eq!(args("-m m -c 64 --kl-divergence-base b").config(Some(&base)).unwrap().n_ctx, 64);
        let e = args("-m m --kl-divergence").task().unwrap_err().to_string();
        assert!(e.contains("--kl-divergence-base"), "{e}");
        assert!(args("-m m").task().unwrap_err().to_string().contains("-f"));
        assert!(matches!(args("-m m -f t --kl-divergence-base b").task().unwrap(), PerplexityTask::SaveKlBase { .. }));
        assert!(args("-m m -f t -fa maybe").config(None).is_err());
    }
}
