//! pp/tg from the library: a grid, supervised workers, records as they come, written in
//! llama-bench's markdown as they are measured.
//!
//! ```sh
//! cargo run --release --example bench -- model.gguf
//! ```

use benchkit::bench::output::{MdColumns, OutputFormat, Writer};
use benchkit::bench::{BenchConfig, Grid, Progress, RunConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Supervised sweeps re-execute this program as their worker: first thing in main.
    benchkit::supervise::worker_entry();
    let model = std::env::args().nth(1).ok_or("usage: bench MODEL.gguf")?;
    let config = BenchConfig {
        grid: Grid { n_prompt: vec![64], n_gen: vec![16], n_threads: vec![1, 2], ..Grid::new(&model) },
        run: RunConfig { repetitions: 3, ..RunConfig::default() },
        ..BenchConfig::default()
    };
    let sweep = config.run(&benchkit::Backend::init()?, |p: &Progress| {
        if let Progress::Start { index, total, test } = p {
            eprintln!("point {}/{total}: {test}", index + 1);
        }
    })?;
    let mut out = Writer::new(std::io::stdout(), OutputFormat::Md, MdColumns::from_records(sweep.planned_records()))?;
    // A point that crashes llama.cpp comes back as a `crashed` record; the sweep goes on.
    for r in sweep {
        out.write_record(&r)?;
    }
    out.finish()?;
    Ok(())
}
