//! `benchkit bench`: llama-bench's flags (parsed by [`benchkit::cli::bench`]), llama-bench's
//! output formats.
//!
//! ```sh
//! benchkit bench -m model.gguf -p 512 -n 128 -t 2 -o json
//! benchkit bench -t 1,2 -b 64-512*2 -o md      # embedded default model
//! ```

use benchkit::bench::output::{MdColumns, Writer};
use benchkit::bench::Progress;
use benchkit::cli::bench::BenchArgs;
use benchkit::{Backend, BuildInfo};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;

/// `benchkit bench ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = BenchArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    args.refuse_model_hub()?;
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
        let devices = backend.devices();
        print!("{}", benchkit::devices::listing(&devices));
        if let Some(note) = benchkit::devices::missing_backends_note(&BuildInfo::current().backends, &devices) {
            eprintln!("{note}");
        }
        return Ok(());
    }
    // Process-wide, before any model is loaded (llama-bench calls it right after backend init).
    backend.init_numa(args.numa()?);
    let (format, format_err) = args.output_formats()?;
    let (config, synthetic) = args.config(&backend)?;
    let mut stored = args.store.writer()?;
    if let Some(name) = synthetic {
        eprintln!("no -m given: using the embedded synthetic model {name} (generated once, cached)");
    }

    // Its length is known once the sweep has planned its points.
    let bar = ProgressBar::new(0);
    if args.progress {
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} reps {msg}")?);
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let sweep = config.run(&backend, |p: &Progress| match p {
        Progress::Start { index, total, test } => bar.set_message(format!("point {}/{total}: {test}", index + 1)),
        Progress::Repetition { .. } => bar.inc(1),
        _ => {}
    })?;
    bar.set_length(sweep.planned_records().len() as u64 * u64::from(config.run.repetitions));
    let mut jsonl = match &args.save_jsonl {
        Some(p) => Some(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    let columns = MdColumns::from_records(sweep.planned_records());
    let mut out = Writer::new(std::io::stdout().lock(), format, columns.clone())?;
    let mut err_out = format_err.map(|f| Writer::new(std::io::stderr(), f, columns)).transpose()?;
    let mut failed = 0;
    for record in sweep {
        if let Some(f) = jsonl.as_mut() {
            writeln!(f, "{}", serde_json::to_string(&record)?)?;
            f.flush()?;
        }
        if let Some(w) = stored.as_mut() {
            if let Some(e) = w.bench(&record) {
                bar.suspend(|| eprintln!("warning: --store: {e}"));
            }
        }
        if !record.status.is_ok() {
            failed += 1;
            bar.suspend(|| {
                eprintln!("{} {}: {}", record.test, record.status.as_str(), record.error.as_deref().unwrap_or(""))
            });
        }
        bar.suspend(|| -> std::io::Result<()> {
            out.write_record(&record)?;
            err_out.as_mut().map_or(Ok(()), |w| w.write_record(&record))
        })?;
    }
    bar.finish_and_clear();
    out.finish()?;
    err_out.map_or(Ok(()), Writer::finish)?;
    if let Some(w) = stored {
        let line = w.summary();
        w.finish(None)?;
        eprintln!("{line}");
    }
    if failed > 0 {
        eprintln!("{failed} grid point(s) failed: json, jsonl and md carry their errors; csv and sql leave them out");
    }
    Ok(())
}
