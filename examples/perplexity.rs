//! Perplexity from the library, in a supervised worker, with the running value per chunk.
//!
//! ```sh
//! cargo run --release --example perplexity -- model.gguf text.txt
//! ```

use benchkit::perplexity::{PerplexityConfig, PerplexityJob, PerplexityOutput, PerplexityProgress, PerplexityTask};
use benchkit::supervise::TrialConfig;
use benchkit::ModelParams;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    benchkit::supervise::worker_entry();
    let mut args = std::env::args().skip(1);
    let (model, text) = match (args.next(), args.next()) {
        (Some(m), Some(t)) => (m, t),
        _ => return Err("usage: perplexity MODEL.gguf TEXT".into()),
    };
    let job = PerplexityJob {
        model: model.into(),
        model_params: ModelParams::default(),
        params: PerplexityConfig { n_ctx: 512, chunks: Some(8), ..PerplexityConfig::default() },
        task: PerplexityTask::Perplexity { text: text.into() },
        telemetry: Default::default(),
    };
    let out = job.run_supervised(&TrialConfig::default(), |p| {
        if let PerplexityProgress::Chunk(c) = p {
            eprintln!("[{}/{}] {:.4}", c.chunk, c.n_chunk, c.ppl);
        }
    })?;
    if let PerplexityOutput::Perplexity(r) = out {
        println!("PPL = {:.4} +/- {:.5} ({} tokens scored)", r.ppl, r.ppl_uncertainty, r.n_scored);
        println!("{}", serde_json::to_string_pretty(&r.provenance)?);
    }
    Ok(())
}
