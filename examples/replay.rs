//! Serving replay from the library: a synthetic workload at 2 req/s (Poisson), the in-process
//! llama.cpp engine in a supervised worker, vLLM-style metrics and result.
//!
//! ```sh
//! cargo run --release --example replay -- model.gguf
//! ```

use benchkit::replay::inproc::InprocConfig;
use benchkit::replay::workload::{Arrival, LengthDist, ScheduleConfig};
use benchkit::replay::{DatasetSource, ReplayConfig, TargetConfig, WorkloadConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    benchkit::supervise::worker_entry();
    let model = std::env::args().nth(1).ok_or("usage: replay MODEL.gguf")?;
    let config = ReplayConfig {
        target: TargetConfig::Inproc(InprocConfig::new(&model, 4, 256)),
        tokenizer: None,
        model_id: None,
        isolation: Default::default(),
        workload: WorkloadConfig {
            dataset: DatasetSource::Synthetic { input_len: LengthDist::Fixed(64), output_len: LengthDist::Fixed(16) },
            num_prompts: 8,
            seed: 7,
            fixed_output_len: None,
            multi_turn: false,
        },
        schedule: ScheduleConfig::new(Arrival::Poisson { rate: 2.0 }).seed(7),
        drive: Default::default(),
        slo: "ttft:500".parse()?,
        save_requests: None,
        cancel: None,
        telemetry: Default::default(),
        telemetry_pid: None,
        shard: None,
        check: Default::default(),
    };
    let result = config.run(&benchkit::Backend::init()?, |r| eprintln!("request {} done: ok={}", r.id, r.ok()))?;
    let s = &result.summary;
    println!("{} completed in {:.2} s: {:.2} req/s", s.completed, s.duration, s.request_throughput);
    println!("TTFT median {:.1} ms, TPOT median {:.1} ms", s.ttft.median_ms, s.tpot.median_ms);
    Ok(())
}
