//! Serving replay from the library: a synthetic workload at 2 req/s (Poisson), the in-process
//! llama.cpp engine in a supervised worker, vLLM-style metrics.
//!
//! ```sh
//! cargo run --release --example replay -- model.gguf
//! ```

use benchkit::replay::inproc::InprocConfig;
use benchkit::replay::metrics::{Aggregator, SloConfig};
use benchkit::replay::workload::{schedule, synthetic_requests, Arrival, LengthDist, ScheduleConfig, SyntheticConfig};
use benchkit::replay::{replay_inproc_supervised, DriveConfig};
use benchkit::supervise::TrialConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    benchkit::supervise::worker_entry();
    let model = std::env::args().nth(1).ok_or("usage: replay MODEL.gguf")?;
    let seed = 7;
    let cfg = SyntheticConfig {
        num_requests: 8,
        input_len: LengthDist::Fixed(64),
        output_len: LengthDist::Fixed(16),
        token_range: 300..1000,
        seed,
    };
    let mut requests = synthetic_requests(&cfg)?;
    schedule(&mut requests, &ScheduleConfig::new(Arrival::Gamma { rate: 2.0, burstiness: 1.0 }).seed(seed))?;
    let mut agg = Aggregator::new(SloConfig::default());
    let engine = InprocConfig::new(&model, 4, 256);
    let stats = replay_inproc_supervised(&engine, requests, &DriveConfig::default(), &TrialConfig::default(), |r| {
        agg.record(&r)
    })?;
    let s = agg.finish(stats.duration);
    println!("{} completed in {:.2} s: {:.2} req/s", s.completed, s.duration, s.request_throughput);
    println!("TTFT median {:.1} ms, TPOT median {:.1} ms", s.ttft.median_ms, s.tpot.median_ms);
    Ok(())
}
