//! `benchkit`: one command for every capability.
//!
//! ```sh
//! benchkit bench -m model.gguf -p 512 -n 128 -o json     # llama-bench's flags and formats
//! benchkit perplexity -m model.gguf -f text.txt --json    # llama-perplexity's flags and text
//! benchkit placement --arm default --arm pinned:cpus=0-1,strict=1 -- bench -p 512 -n 128
//! benchkit replay --dataset sharegpt --target http --base-url http://127.0.0.1:8080 --save-result r.json
//! ```
//! Each subcommand parses its own flags (llama.cpp's single-dash spellings included) and has a
//! complete `--help`. Supervised trials re-execute this binary as their worker.

mod bench;
mod commits;
mod experiment;
mod perplexity;
mod placement;
mod replay;
mod replay_merge;
mod report;
mod results;
mod store;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "benchkit", version, about = "Measure LLM inference with llama.cpp", disable_help_subcommand = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; their flags are parsed by the subcommand itself (`benchkit bench --help`).
#[derive(Subcommand)]
enum Command {
    /// pp/tg throughput with llama-bench's flags, methodology and output formats.
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Perplexity and KL divergence with llama-perplexity's flags and report (`--json` for the result).
    #[command(disable_help_flag = true)]
    Perplexity {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Compare schedulers (sched_ext included), thread placements and NUMA memory policies, each verified.
    #[command(disable_help_flag = true)]
    Placement {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Serving replay (ShareGPT or synthetic) in-process or against an OpenAI-compatible server.
    #[command(disable_help_flag = true)]
    Replay {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Compare a baseline and a candidate from the store: ratio, bootstrap CI, Mann-Whitney p, verdict.
    #[command(disable_help_flag = true)]
    Compare {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Bring llama-bench (json, jsonl, csv, sql) and vLLM benchmark results into the store.
    #[command(disable_help_flag = true)]
    Import {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write the store's records as jsonl or csv.
    #[command(disable_help_flag = true)]
    Export {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build and benchmark each llama.cpp commit of a repository, store and compare them.
    #[command(disable_help_flag = true)]
    Commits {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Rank models, builds or machines by a metric, with CIs.
    #[command(disable_help_flag = true)]
    Rankings {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The store's runs and records (`results list`), or over HTTP (`results serve`).
    #[command(disable_help_flag = true)]
    Results {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A self-contained HTML report with SVG charts; single charts as SVG or PNG.
    #[command(disable_help_flag = true)]
    Report {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run an experiment file (factors x levels -> treatments with setup and teardown); compare its treatments.
    #[command(disable_help_flag = true)]
    Experiment {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// A subcommand's entry point: its argv, program name first.
type Run = fn(Vec<String>) -> anyhow::Result<()>;

fn main() {
    // Supervised trials re-execute this binary as their worker.
    benchkit::supervise::worker_entry();
    // `--version` also names the llama.cpp build: its source, backends and CUDA toolkit.
    // clap keeps a version string for the program's lifetime: leaked once.
    let long_version: &'static str = benchkit::BuildInfo::current().long_version().trim_end().to_string().leak();
    let matches = Cli::command().long_version(long_version).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let (name, run, args): (&str, Run, Vec<String>) = match cli.command {
        Command::Bench { args } => ("bench", bench::main, args),
        Command::Perplexity { args } => ("perplexity", perplexity::main, args),
        Command::Placement { args } => ("placement", placement::main, args),
        Command::Replay { args } if args.first().is_some_and(|a| a == "merge") => {
            ("replay merge", replay_merge::main, args[1..].to_vec())
        }
        Command::Replay { args } => ("replay", replay::main, args),
        Command::Compare { args } => ("compare", store::compare, args),
        Command::Import { args } => ("import", store::import, args),
        Command::Export { args } => ("export", store::export, args),
        Command::Commits { args } => ("commits", commits::main, args),
        Command::Rankings { args } => ("rankings", results::rankings, args),
        Command::Results { args } => ("results", results::main, args),
        Command::Report { args } => ("report", report::main, args),
        Command::Experiment { args } => ("experiment", experiment::main, args),
    };
    let argv = std::iter::once(format!("benchkit {name}")).chain(args).collect();
    if let Err(e) = run(argv) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
