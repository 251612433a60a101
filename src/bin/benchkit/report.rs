//! `benchkit report`: the store as one self-contained HTML page, or one chart as SVG or PNG.
//! Flags and rendering are [`benchkit::cli::report`]'s; the charts [`benchkit::report`]'s.
//!
//! ```sh
//! benchkit report --store results.db --filter model=gemma3 -o report.html
//! benchkit report --store results.db --chart threads -o threads.png
//! ```

use std::io::Write;

use benchkit::cli::report::ReportArgs;
use benchkit::store::Store;

/// `benchkit report ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = ReportArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    // Flag mistakes are reported before the store is read.
    let filter = args.filter()?;
    let kind = args.output_kind()?;
    let store = Store::open_read_only(&args.store.spec()?)?;
    let out = args.render(kind, &store.entries(&filter)?)?;
    for why in &out.left_out {
        eprintln!("note: left out {why}");
    }
    if args.output.as_os_str() == "-" {
        std::io::stdout().lock().write_all(&out.bytes)?;
    } else {
        std::fs::write(&args.output, &out.bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.output.display()))?;
        eprintln!("wrote {}", args.output.display());
    }
    Ok(())
}
