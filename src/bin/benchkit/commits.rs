//! `benchkit commits`: build and benchmark each llama.cpp commit of a repository, store and
//! compare them (flags in [`benchkit::cli::commits`], the sweep in [`benchkit::commits`]).
//!
//! ```sh
//! benchkit commits --repo ~/llama.cpp --commits b6000..b6010 --store results.db -- bench -p 512 -n 128 -r 5
//! ```

use benchkit::cli::commits::{CommitsArgs, FailOn};
use benchkit::commits::{Progress, SweepReport};
use std::path::Path;

/// The workspace this binary was built from: what each commit is built with by default.
const BENCHKIT_SRC: &str = env!("CARGO_MANIFEST_DIR");

/// `benchkit commits ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = CommitsArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    let sweep = args.sweep(Path::new(BENCHKIT_SRC), std::env::var("BENCHKIT_STORE").ok())?;
    let short = |sha: &str| sha.chars().take(12).collect::<String>();
    let report = sweep.run(&mut |p: &Progress| match p {
        Progress::Resolved { commits } => eprintln!("{} commit(s) to build and measure", commits.len()),
        Progress::Building { index, total, sha, log } => {
            eprintln!("[{}/{total}] {}: building (log: {})", index + 1, short(sha), log.display())
        }
        Progress::Built { sha, ok, elapsed, ccache } => {
            let cc = ccache.map(|c| format!(", ccache {} hits / {} misses", c.hits, c.misses)).unwrap_or_default();
            let what = if *ok { "built" } else { "BUILD FAILED" };
            eprintln!("      {}: {what} in {:.0} s{cc}", short(sha), elapsed.as_secs_f64());
        }
        Progress::Running { sha } => eprintln!("      {}: running the suite", short(sha)),
        Progress::Done(o) => {
            let run = o.run_id.map(|r| format!("run {}", r.0)).unwrap_or_default();
            eprintln!("      {}: {} ({run}, {} records)", short(&o.sha), o.status, o.records);
        }
        _ => {}
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", summary(&report));
    }
    if args.fail_on == FailOn::Regression && report.has_regression() {
        eprintln!("a regression was flagged");
        std::process::exit(2);
    }
    Ok(())
}

/// The report as text: each commit, then each comparison as a markdown table.
fn summary(report: &SweepReport) -> String {
    use std::fmt::Write;
    let short = |sha: &str| sha.chars().take(12).collect::<String>();
    let mut s = String::from("| commit | status | run | records | build s |\n| --- | --- | --- | ---: | ---: |\n");
    for o in &report.commits {
        let run = o.run_id.map(|r| r.0.to_string()).unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {} | {run} | {} | {:.0} |",
            short(&o.sha),
            o.status,
            o.records,
            o.build_time.as_secs_f64()
        );
    }
    for c in &report.comparisons {
        let _ = writeln!(s, "\n### {} -> {}\n", short(&c.baseline), short(&c.candidate));
        s.push_str(&benchkit::store::compare::to_markdown(&c.result));
    }
    for why in &report.incomparable {
        let _ = writeln!(s, "\nnot compared: {why}");
    }
    for o in report.commits.iter().filter(|o| o.status != "ok") {
        let _ = writeln!(s, "\n{} {}:\n{}", short(&o.sha), o.status, o.error.as_deref().unwrap_or(""));
    }
    s
}
