//! `benchkit placement`: arms × rounds over a workload, each trial placed and verified
//! (flags parsed by [`benchkit::cli::placement`]); a markdown table on stdout, the whole
//! report as JSON with `--json`, each trial as a JSON line with `--jsonl` as it ends.
//!
//! ```sh
//! benchkit placement --arm default --arm pinned:cpus=0-1,strict=1 --rounds 5 --json out.json \
//!     -- bench -m model.gguf -p 512 -n 128 -t 2
//! ```

use benchkit::cli::placement::PlacementArgs;
use benchkit::Backend;
use std::io::Write;

/// `benchkit placement ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = PlacementArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    let backend = Backend::init()?;
    let (config, synthetic) = args.config(&backend)?;
    let stored = args.store.writer()?;
    if let Some(name) = synthetic {
        eprintln!("no -m given: using the embedded synthetic model {name} (generated once, cached)");
    }
    let mut jsonl = match &args.jsonl {
        Some(p) => Some(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    let total = config.arms.len() * config.rounds as usize;
    let unit = match config.workload.unit() {
        "" => String::new(),
        u => format!(" {u}"),
    };
    let mut write_err = None;
    let report = config.run(&backend, |t| {
        let samples: Vec<String> = t.samples.iter().map(|(k, v)| format!("{k} {v:.2}{unit}")).collect();
        let verdict = if t.valid { "valid".to_string() } else { format!("INVALID: {}", t.invalid_reasons.join("; ")) };
        eprintln!("[{}/{total}] {} round {}: {} {verdict}", t.position + 1, t.arm, t.round + 1, samples.join(", "));
        if let Some(f) = jsonl.as_mut() {
            if let Err(e) = serde_json::to_writer(&mut *f, t).map_err(std::io::Error::from).and_then(|_| writeln!(f)) {
                write_err.get_or_insert(e);
            }
        }
    })?;
    if let Some(e) = write_err {
        eprintln!("warning: --jsonl: {e}");
    }
    let json = serde_json::to_string_pretty(&report)?;
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{json}"),
        Some(p) => {
            std::fs::write(p, json + "\n")?;
            print!("{}", report.markdown());
        }
        None => print!("{}", report.markdown()),
    }
    if let Some(mut w) = stored {
        w.placement(&report)?;
        eprintln!("{}", w.summary());
        w.finish(None)?;
    }
    Ok(())
}
