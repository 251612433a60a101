//! `benchkit experiment run FILE --store PATH` and `benchkit experiment report`: flags in
//! [`benchkit::cli::experiment`], the work in [`benchkit::experiment`]. Each treatment's command
//! runs as this executable.
//!
//! ```sh
//! benchkit experiment run docs/examples/parallel-x-rate.toml --store results.db
//! benchkit experiment report --store results.db parallel-x-rate
//! ```

use benchkit::cli::experiment::{ExperimentArgs, ExperimentCommand, ReportFormat};
use benchkit::experiment::{self as exp, Experiment, Progress};
use benchkit::store::Store;

/// `benchkit experiment ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = ExperimentArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    match args.command {
        ExperimentCommand::Run(r) => {
            let x = Experiment::load(&r.file)?;
            let opts = r.options(std::env::current_exe()?, &x.name)?;
            if r.dry_run {
                let plans: Vec<_> = x.treatments.iter().map(|t| x.plan(t, 0, &opts.store)).collect();
                println!("{}", serde_json::to_string_pretty(&plans)?);
                return Ok(());
            }
            exp::cancel_on_signals(&opts.cancel)?;
            eprintln!(
                "experiment {} (file version {}): {} treatment(s), logs in {}",
                x.name,
                x.hash,
                x.treatments.len(),
                opts.log_dir.display()
            );
            let summary = x.run(&opts, |p| match p {
                Progress::Starting { index, total, plan } => {
                    eprintln!("[{}/{total}] {}: starting (port {})", index + 1, plan.treatment.id, plan.port);
                }
                Progress::Done { index, total, outcome } => {
                    let run = outcome.run_id.map(|r| format!(" (run {})", r.0)).unwrap_or_default();
                    let status = match outcome.status.as_str() {
                        "skipped" => "skipped: completed before".to_string(),
                        s => format!("{s} in {:.1} s", outcome.elapsed.as_secs_f64()),
                    };
                    eprintln!("[{}/{total}] {}: {status}{run}", index + 1, outcome.treatment.id);
                    if let Some(e) = &outcome.error {
                        eprintln!("  {}", e.replace('\n', "\n  "));
                    }
                    if let Some(e) = &outcome.teardown_error {
                        eprintln!("  {e}");
                    }
                }
                _ => {}
            })?;
            if summary.interrupted {
                eprintln!("experiment {}: interrupted; run it again to resume", x.name);
                std::process::exit(130);
            }
            let failed = summary.failed();
            if failed > 0 {
                anyhow::bail!(
                    "{failed} of {} treatment(s) did not complete; run it again to retry them",
                    x.treatments.len()
                );
            }
            eprintln!("experiment {}: {} treatment(s) complete", x.name, x.treatments.len());
        }
        ExperimentCommand::Report(r) => {
            let config = r.config()?;
            let store = Store::open_read_only(&r.store.spec()?)?;
            let report = exp::report(&store, &config)?;
            match r.output {
                ReportFormat::Md => print!("{}", exp::to_markdown(&report)),
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                ReportFormat::Csv => print!("{}", exp::to_csv(&report)),
                _ => anyhow::bail!("this benchkit does not print that format"),
            }
        }
        _ => anyhow::bail!("this benchkit does not know that experiment subcommand"),
    }
    Ok(())
}
