//! `benchkit rankings` and `benchkit results` (`list`, `serve`). Flags are parsed by
//! [`benchkit::cli::results`]; rankings are [`benchkit::store::rankings`]'s, the server
//! [`benchkit::serve`]'s.
//!
//! ```sh
//! benchkit rankings --metric ttft --store results.db
//! benchkit rankings --metric pp --by build --filter n_threads=8 -o json
//! benchkit results list --store results.db --filter machine=...
//! BENCHKIT_API_KEY=... benchkit results serve --store results.db --listen 127.0.0.1:8088
//! ```

use std::io::Write;

use benchkit::cli::results::{RankingsArgs, ResultsArgs, ResultsCommand, TableFormat};
use benchkit::store::{rankings, Store};

/// `benchkit rankings ARGS`: `argv` starts with the program name.
pub fn rankings(argv: Vec<String>) -> anyhow::Result<()> {
    let args = RankingsArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    let filter = args.filter()?;
    let store = Store::open_read_only(&args.store.spec()?)?;
    let ranked = rankings::rankings(&store.entries(&filter)?, args.metric, args.by);
    match args.output {
        TableFormat::Md => print!("{}", rankings::to_markdown(args.metric, args.by, &ranked)),
        TableFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&rankings::to_json(args.metric, args.by, &ranked))?)
        }
    }
    Ok(())
}

/// `benchkit results list|serve ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = ResultsArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    match args.command {
        ResultsCommand::List(a) => {
            let filter = a.filter()?;
            let store = Store::open_read_only(&a.store.spec()?)?;
            let runs = store.runs(&filter)?;
            match a.output {
                TableFormat::Md => print!("{}", benchkit::cli::results::runs_markdown(&runs)),
                TableFormat::Json => println!("{}", serde_json::to_string_pretty(&runs)?),
            }
        }
        ResultsCommand::Serve(a) => {
            let config = a.config()?;
            if matches!(config.auth, benchkit::serve::Auth::Open) {
                eprintln!("warning: --no-auth: anyone who can reach {} reads the store", config.listen);
            }
            benchkit::serve::serve(config, |addr| {
                // Tests (and scripts) asking for port 0 read the port from this line.
                println!("listening on http://{addr}");
                let _ = std::io::stdout().flush();
            })?;
        }
        // `ResultsCommand` is non-exhaustive: subcommands a newer library adds.
        _ => anyhow::bail!("this benchkit does not implement that `results` subcommand"),
    }
    Ok(())
}
