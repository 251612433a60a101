//! `benchkit placement`: arms, rounds and seed, then the workload's own command line after
//! `--`, as a [`PlacementConfig`].
//!
//! ```text
//! benchkit placement --arm default --arm pinned:cpus=0-1,strict=1 --arm batch:policy=batch \
//!     --arm membind:mem=bind:0 --arm lavd:scheduler=scx_lavd --rounds 5 --seed 1 --json out.json \
//!     -- bench -m model.gguf -p 512 -n 128 -t 2
//! benchkit placement --arm default --arm pinned:cpus=0-1 \
//!     --server "llama-server -m model.gguf -t 2 --port {port}" -- replay -m model.gguf --dataset sharegpt
//! ```

use super::bench::BenchArgs;
use super::CliError;
use crate::placement::{parse_arm, parse_arms_file, Arm, PlacementConfig, ScxSysfs, Workload, SCHED_EXT_SYSFS};
use crate::Backend;
use clap::Parser;
use std::path::PathBuf;

/// `benchkit placement`'s flags.
#[derive(Parser, Debug)]
#[command(
    name = "benchkit placement",
    about = "Compare schedulers (sched_ext included), thread placements and NUMA memory policies on a workload, each verified",
    after_help = "Arms: NAME[:key=value,...]. Keys: cpus=cores|threads|llc:N|node:N|spread:N|0-3,8  strict=0|1  \
                  policy=other|batch|idle|fifo:N|rr:N|ext  nice=N  mem=bind:NODES|interleave:NODES|all|preferred:N|local  \
                  scheduler=\"scx_NAME ARGS\"  partial=0|1  attach_timeout=S  detach_timeout=S. An arm without keys runs \
                  the kernel's scheduler as is (and asserts sched_ext disabled). The workload follows `--`: \
                  `bench`, `perplexity` or `replay --target inproc`, with that subcommand's flags; with --server, \
                  `replay` against the server the harness starts (placed) for each trial."
)]
pub struct PlacementArgs {
    /// An arm (repeatable); the first is the baseline unless --baseline names one.
    #[arg(long = "arm")]
    pub arms: Vec<String>,
    /// A TOML arms file: one [[arm]] table per arm, with the same keys (and `name`).
    #[arg(long = "arms")]
    pub arms_file: Option<PathBuf>,
    /// Trials per arm.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// Seeds the interleaved order and the bootstrap.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The arm the others are compared with.
    #[arg(long)]
    pub baseline: Option<String>,
    /// Writes the whole report as JSON (`-`: stdout, instead of the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Appends each trial as a JSON line as soon as it ends.
    #[arg(long)]
    pub jsonl: Option<PathBuf>,
    /// The results store: one record per arm when the comparison ends.
    #[cfg(feature = "store")]
    #[command(flatten)]
    pub store: super::store::StoreOut,
    /// sched_ext's sysfs directory.
    #[arg(long, default_value = SCHED_EXT_SYSFS, hide = true)]
    pub scx_sysfs: PathBuf,
    /// Where the kernel log (for ejection reasons) is read.
    #[arg(long, default_value = "/dev/kmsg", hide = true)]
    pub kernel_log: PathBuf,
    /// Starts this server for each trial, placed by the arm, and replays against it over HTTP
    /// (the workload: `replay`, whose `--target http --base-url http://127.0.0.1:{port}` are
    /// the defaults then). `{port}` becomes a free loopback port per trial. Quotes group words.
    #[cfg(feature = "replay-http")]
    #[arg(long, value_name = "COMMAND")]
    pub server: Option<String>,
    /// Polled with GET until the server answers 200.
    #[cfg(feature = "replay-http")]
    #[arg(long, default_value = "/health", value_name = "PATH")]
    pub server_health: String,
    /// Seconds the server may take to answer 200.
    #[cfg(feature = "replay-http")]
    #[arg(long, default_value_t = 300.0, value_name = "S")]
    pub server_ready_timeout: f64,
    /// Appended to the server's command for an arm with a memory policy, so that the weights
    /// are not mmapped (empty: nothing; older llama-server: `--no-mmap`).
    #[cfg(feature = "replay-http")]
    #[arg(long, default_value = "--load-mode none", value_name = "ARGS", allow_hyphen_values = true)]
    pub server_no_mmap: String,
    /// The workload: `bench`, `perplexity` or `replay` (`--target inproc`, or http with
    /// `--server`), and its flags.
    #[arg(last = true, required = true, num_args = 1..)]
    pub workload: Vec<String>,
}

impl PlacementArgs {
    /// Parses `argv`, program name first.
    ///
    /// # Errors
    /// clap's error, with its usage text.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }

    /// The arms: `--arms` file's, then each `--arm`.
    ///
    /// # Errors
    /// [`CliError`] for an unreadable file, an invalid arm, or no arm at all.
    pub fn arms(&self) -> Result<Vec<Arm>, CliError> {
        let mut arms = match &self.arms_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
                    flag: "--arms",
                    path: path.clone(),
                    source,
                })?;
                parse_arms_file(&text)?
            }
            None => Vec::new(),
        };
        for a in &self.arms {
            arms.push(parse_arm(a)?);
        }
        if arms.is_empty() {
            return Err(CliError::Missing { flag: "--arm", why: "a comparison needs at least one arm" });
        }
        Ok(arms)
    }

    /// The workload after `--`: `bench`, `perplexity` or `replay` (in-process), with the
    /// subcommand's own flags.
    ///
    /// # Errors
    /// [`CliError`] for another workload, or its invalid flags.
    pub fn workload(&self, backend: &Backend) -> Result<(Workload, Option<String>), CliError> {
        #[cfg(feature = "replay-http")]
        if let Some(server) = &self.server {
            return self.served(server);
        }
        let (kind, rest) = self.workload.split_first().expect("clap requires a workload");
        let argv = |name: &str| std::iter::once(format!("benchkit {name}")).chain(rest.iter().cloned());
        let flags =
            |name: &'static str, e: clap::Error| CliError::invalid(name, e.render().to_string().trim().to_string());
        match kind.as_str() {
            "bench" => {
                let args = BenchArgs::try_parse_argv(argv("bench")).map_err(|e| flags("-- bench", e))?;
                args.refuse_model_hub()?;
                let (config, synthetic) = args.config(backend)?;
                Ok((Workload::Bench(config), synthetic))
            }
            #[cfg(feature = "perplexity")]
            "perplexity" => {
                let args = super::perplexity::PerplexityArgs::try_parse_argv(argv("perplexity"))
                    .map_err(|e| flags("-- perplexity", e))?;
                let (job, _) = args.job()?;
                Ok((Workload::Perplexity { job, isolation: args.isolation()? }, None))
            }
            #[cfg(feature = "replay")]
            "replay" => {
                let args =
                    super::replay::ReplayArgs::try_parse_argv(argv("replay")).map_err(|e| flags("-- replay", e))?;
                let mut synthetic = None;
                let config = args.config(|| {
                    let m = crate::synth::default_model(backend).map_err(|e| CliError::invalid("-m", e))?;
                    synthetic = m.file_name().map(|n| n.to_string_lossy().into_owned());
                    Ok(m)
                })?;
                Ok((Workload::Replay(config), synthetic))
            }
            other => Err(CliError::invalid(
                "--",
                format!("unknown workload {other:?}: expected bench, perplexity or replay and its flags"),
            )),
        }
    }

    /// `--server`'s workload: the replay after `--`, over HTTP to the server started per trial.
    #[cfg(feature = "replay-http")]
    fn served(&self, server: &str) -> Result<(Workload, Option<String>), CliError> {
        let mut spec = crate::placement::ServerSpec::parse(server).map_err(|e| CliError::invalid("--server", e))?;
        spec.health_path = self.server_health.clone();
        spec.ready_timeout = std::time::Duration::try_from_secs_f64(self.server_ready_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| CliError::invalid("--server-ready-timeout", "expected seconds > 0"))?;
        spec.no_mmap_args = crate::placement::split_words(&self.server_no_mmap)
            .map_err(|e| CliError::invalid("--server-no-mmap", e))?;
        let (kind, rest) = self.workload.split_first().expect("clap requires a workload");
        if kind != "replay" {
            return Err(CliError::invalid(
                "--server",
                format!("the workload is a replay against the server, not {kind:?}"),
            ));
        }
        let has = |flag: &str| rest.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        let mut argv = vec!["benchkit replay".to_string()];
        if !has("--target") {
            argv.extend(["--target".into(), "http".into()]);
        }
        if !has("--base-url") {
            argv.extend(["--base-url".into(), format!("http://127.0.0.1:{}", crate::placement::PORT_PLACEHOLDER)]);
        }
        argv.extend(rest.iter().cloned());
        let args = super::replay::ReplayArgs::try_parse_argv(argv)
            .map_err(|e| CliError::invalid("-- replay", e.render().to_string().trim().to_string()))?;
        let replay = args.config(|| Err(CliError::Missing { flag: "-m", why: "the replay's tokenizer" }))?;
        Ok((Workload::Served { server: spec, replay }, None))
    }

    /// The whole comparison, and the synthetic model's name when the workload uses it.
    ///
    /// # Errors
    /// [`CliError`] for any invalid arm, value or workload.
    pub fn config(&self, backend: &Backend) -> Result<(PlacementConfig, Option<String>), CliError> {
        let arms = self.arms()?;
        let (workload, synthetic) = self.workload(backend)?;
        let mut c = PlacementConfig::new(arms, workload);
        c.rounds = self.rounds;
        c.seed = self.seed;
        c.baseline = self.baseline.clone();
        c.scx = ScxSysfs::new(&self.scx_sysfs);
        c.kernel_log = self.kernel_log.clone();
        Ok((c, synthetic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{MemPolicy, NodeSet, SchedPolicy};
    use crate::topology::CpuPreset;

    fn parse(args: &[&str]) -> PlacementArgs {
        PlacementArgs::try_parse_argv(
            std::iter::once("benchkit placement").chain(args.iter().copied()).map(String::from),
        )
        .unwrap()
    }

    #[test]
    fn the_issues_command_line_parses() {
        let a = parse(&[
            "--arm",
            "default",
            "--arm",
            "pinned:cpus=0-1,strict=1",
            "--arm",
            "batch:policy=batch",
            "--arm",
            "membind:mem=bind:0",
            "--arm",
            "interleave:mem=interleave:all",
            "--arm",
            "lavd:scheduler=\"scx_lavd\"",
            "--rounds",
            "5",
            "--seed",
            "1",
            "--json",
            "out.json",
            "--",
            "bench",
            "-m",
            "MODEL",
            "-p",
            "512",
            "-n",
            "128",
            "-t",
            "2",
        ]);
        let arms = a.arms().unwrap();
        assert_eq!(
            arms.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["default", "pinned", "batch", "membind", "interleave", "lavd"]
        );
        assert_eq!(arms[1].placement.cpus, Some(CpuPreset::List(vec![0, 1])));
        assert!(arms[1].placement.strict);
        assert_eq!(arms[2].placement.policy, Some(SchedPolicy::Batch));
        assert_eq!(arms[3].placement.mem, Some(MemPolicy::Bind(NodeSet::List(vec![0]))));
        assert_eq!(arms[4].placement.mem, Some(MemPolicy::Interleave(NodeSet::All)));
        assert_eq!(arms[5].scheduler.as_ref().unwrap().command, ["scx_lavd"]);
        assert_eq!((a.rounds, a.seed), (5, 1));
        assert_eq!(a.workload[..3], ["bench", "-m", "MODEL"]);
    }

    #[test]
    fn bad_arms_and_workloads_are_refused() {
        let a = parse(&["--arm", "x:cpus=banana", "--", "bench"]);
        assert!(a.arms().unwrap_err().to_string().contains("cpus"));
        let a = parse(&["--", "bench"]);
        assert!(matches!(a.arms(), Err(CliError::Missing { flag: "--arm", .. })));
        let a = parse(&["--arms", "/nonexistent/arms.toml", "--", "bench"]);
        assert!(a.arms().unwrap_err().to_string().contains("/nonexistent/arms.toml"));
        assert!(PlacementArgs::try_parse_argv(["benchkit placement".to_string(), "--arm".into(), "a".into()]).is_err());
    }

    #[cfg(feature = "replay-http")]
    #[test]
    fn a_server_command_makes_a_served_replay_with_loopback_defaults() {
        let backend = Backend::init().unwrap();
        let a = parse(&[
            "--arm",
            "a",
            "--server",
            "llama-server -m 'm m.gguf' --port {port}",
            "--server-no-mmap",
            "--no-mmap",
            "--",
            "replay",
            "-m",
            "t.gguf",
        ]);
        let (w, _) = a.workload(&backend).unwrap();
        let Workload::Served { server, replay } = w else { panic!("{w:?}") };
        assert_eq!(server.command, ["llama-server", "-m", "m m.gguf", "--port", "{port}"]);
        assert_eq!(
            (server.health_path.as_str(), &server.no_mmap_args[..]),
            ("/health", &["--no-mmap".to_string()][..])
        );
        match replay.target {
            crate::replay::TargetConfig::Http(h) => assert_eq!(h.base_url, "http://127.0.0.1:{port}"),
            t => panic!("{t:?}"),
        }
        let a = parse(&["--arm", "a", "--server", "s", "--", "bench"]);
        assert!(a.workload(&backend).unwrap_err().to_string().contains("not \"bench\""));
        let a = parse(&["--arm", "a", "--server", "s", "--server-ready-timeout", "0", "--", "replay"]);
        assert!(a.workload(&backend).unwrap_err().to_string().contains("--server-ready-timeout"));
    }
}
