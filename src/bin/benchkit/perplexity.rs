//! `benchkit perplexity`: llama-perplexity's flags (parsed by [`benchkit::cli::perplexity`])
//! and its text (written by [`benchkit::perplexity::report`]).
//!
//! ```sh
//! benchkit perplexity -m model.gguf -f text.txt -c 512 -b 2048 -t 2
//! benchkit perplexity -m f16.gguf -f text.txt -c 512 --kl-divergence-base base.kld
//! benchkit perplexity -m q4.gguf -c 512 --kl-divergence-base base.kld --kl-divergence
//! benchkit perplexity -m model.gguf -f text.txt --chunks 10 --json > result.json
//! ```
//!
//! Per-chunk values and `Final estimate: PPL = X +/- Y` go to stdout as llama-perplexity prints
//! them; with `--json` the result record goes to stdout and that text to stderr.

use benchkit::cli::perplexity::PerplexityArgs;
use benchkit::perplexity::report::TextReport;
use benchkit::perplexity::PerplexityOutput;
use benchkit::Backend;
use std::io::Write;

/// `benchkit perplexity ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = PerplexityArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    let (job, base) = args.job()?;
    let stored = args.store.writer()?;
    let layout = job.params.layout()?;
    let text: Box<dyn Write> = if args.json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let mut report = TextReport::new(text, std::io::stderr(), layout);
    report.start(&job.task, base.as_ref());
    let result = job.execute(&Backend::init()?, &args.isolation()?, |p| report.progress(p))?;
    report.finish(&result)?;
    if args.json {
        let json = match &result {
            PerplexityOutput::KlDivergence(r) => serde_json::to_string_pretty(r)?,
            PerplexityOutput::Perplexity(r) => serde_json::to_string_pretty(r)?,
            _ => anyhow::bail!("this build cannot print a {result:?} as JSON"),
        };
        println!("{json}");
    }
    if let Some(mut w) = stored {
        w.perplexity(&result)?;
        eprintln!("{}", w.summary());
        w.finish(None)?;
    }
    Ok(())
}
