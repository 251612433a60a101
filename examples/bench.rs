//! pp/tg from the library: a grid, a supervised sweep, records as they come, llama-bench's
//! markdown at the end.
//!
//! ```sh
//! cargo run --release --example bench -- model.gguf
//! ```

use benchkit::bench::output::{to_string, OutputFormat};
use benchkit::bench::{Grid, RunConfig, SupervisedSweep};
use benchkit::supervise::TrialConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Supervised sweeps re-execute this program as their worker: first thing in main.
    benchkit::supervise::worker_entry();
    let model = std::env::args().nth(1).ok_or("usage: bench MODEL.gguf")?;
    let grid = Grid { n_prompt: vec![64], n_gen: vec![16], n_threads: vec![1, 2], ..Grid::new(&model) };
    let settings = RunConfig { repetitions: 3, ..RunConfig::default() };
    let mut records = Vec::new();
    // A point that crashes llama.cpp comes back as a `crashed` record; the sweep goes on.
    for r in SupervisedSweep::new(&grid, settings, TrialConfig::default())? {
        eprintln!("{} t={}: {:.2} t/s ({})", r.test, r.n_threads, r.avg_ts, r.status.as_str());
        records.push(r);
    }
    print!("{}", to_string(&records, OutputFormat::Md));
    Ok(())
}
