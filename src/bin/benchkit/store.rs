//! `benchkit compare`, `benchkit import`, `benchkit export`: flags in [`benchkit::cli::store`],
//! the work in [`benchkit::store`].
//!
//! ```sh
//! benchkit compare --store results.db -b a1b2c3d -c e4f5a6b --fail-on regression
//! benchkit import --store results.db llama-bench.json
//! benchkit export --store results.db -o records.csv
//! ```

use std::io::Write;

use benchkit::cli::store::{CompareArgs, CompareFormat, ExportArgs, ImportArgs};
use benchkit::store::{compare as cmp, import as imp, Store};

/// `benchkit compare ARGS`: `argv` starts with the program name.
pub fn compare(argv: Vec<String>) -> anyhow::Result<()> {
    let args = CompareArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    let config = args.config()?;
    let store = Store::open_read_only(&args.store.spec()?)?;
    let c = cmp::compare(&store.entries(&args.filter()?)?, &config)?;
    match args.output {
        CompareFormat::Md => print!("{}", cmp::to_markdown(&c)),
        CompareFormat::Json => println!("{}", serde_json::to_string_pretty(&c)?),
        CompareFormat::Csv => print!("{}", cmp::to_csv(&c)),
        _ => anyhow::bail!("this benchkit does not print that format"),
    }
    if args.fails(&c) {
        std::io::stdout().flush()?;
        eprintln!("compare: --fail-on {:?} holds", args.fail_on);
        std::process::exit(2);
    }
    Ok(())
}

/// `benchkit import FILES`: each file in its own transactions; a file that fails does not stop
/// the others, but the exit code says it failed.
pub fn import(argv: Vec<String>) -> anyhow::Result<()> {
    let args = ImportArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    let store = Store::open(&args.store.spec()?)?;
    let mut failed = 0;
    for f in &args.files {
        match imp::import_file(&store, f, args.format, args.label.as_deref()) {
            Ok(r) => {
                let runs: Vec<String> = r.runs.iter().map(|r| r.0.to_string()).collect();
                eprintln!("{}: {} record(s) in run {}", f.display(), r.records, runs.join(", "));
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} file(s) not imported", args.files.len());
    }
    Ok(())
}

/// `benchkit export`: the filtered records as jsonl or csv, to `-o` or stdout.
pub fn export(argv: Vec<String>) -> anyhow::Result<()> {
    let args = ExportArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    let store = Store::open_read_only(&args.store.spec()?)?;
    let entries = store.entries(&args.filter()?)?;
    match &args.output {
        Some(path) => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
            imp::export(&entries, args.format(), &mut out)?;
            out.flush()?;
        }
        None => imp::export(&entries, args.format(), std::io::stdout().lock())?,
    }
    Ok(())
}
