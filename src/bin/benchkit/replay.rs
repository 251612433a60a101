//! `benchkit replay`: ShareGPT (or synthetic) replay against the in-process engine or an
//! OpenAI-compatible server, with vLLM-compatible serving metrics. Flags are parsed by
//! [`benchkit::cli::replay`]; the run is [`benchkit::replay::ReplayConfig`]'s.
//!
//! ```sh
//! # in-process continuous batching, 4 slots
//! benchkit replay --target inproc -m model.gguf --dataset sharegpt \
//!     --num-prompts 50 --request-rate 2 --max-concurrency 4 --save-result result.json
//! # an OpenAI-compatible server (llama-server, vLLM, ...); -m names the tokenizer
//! benchkit replay --target http --base-url http://127.0.0.1:8080 \
//!     --model gemma -m model.gguf --dataset sharegpt --num-prompts 100 --request-rate inf
//! ```

use benchkit::cli::replay::ReplayArgs;
use benchkit::cli::CliError;
use benchkit::Backend;
use std::time::Instant;

mod sweep;

/// `benchkit replay ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = ReplayArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    // benchkit's warnings (a records file that stops taking writes) on stderr.
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("benchkit=warn").init();
    let backend = Backend::init()?;
    let default_model = || {
        benchkit::synth::default_model(&backend).map_err(|e| CliError::Invalid { flag: "-m", reason: e.to_string() })
    };
    let sweep = args.sweep_config()?;
    let config = args.config(default_model)?;
    if let Some(sweep) = sweep {
        return sweep::main(&args, config, &sweep, &backend);
    }
    let prepared = config.prepare(&backend)?;
    let stored = args.store.writer()?;
    // The store keeps per-request latencies as samples, so stored replays compare with CIs.
    let mut requests = Vec::new();
    if let Some(t) = &prepared.dataset().truncation {
        eprintln!("dataset {}: {t}", prepared.dataset().path.as_deref().unwrap_or("?"));
    }
    let total = prepared.requests().len();
    let (mut done, mut failed, started) = (0usize, 0usize, Instant::now());
    let result = prepared.run(&backend, |rec| {
        done += 1;
        failed += usize::from(!rec.ok());
        if stored.is_some() {
            requests.push(rec.clone());
        }
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        eprint!("\r{done}/{total} done, {failed} failed, {rate:.2} req/s   ");
    })?;
    eprintln!();
    if let Some(why) = &result.invalid {
        eprintln!("WARNING: invalid run, the client was the bottleneck ({why}); its latencies are not the server's");
    }
    let text = serde_json::to_string_pretty(&result)?;
    match &args.save_result {
        Some(p) => std::fs::write(p, &text)?,
        None => println!("{text}"),
    }
    if let Some(mut w) = stored {
        w.replay(&result, &requests)?;
        eprintln!("{}", w.summary());
        w.finish(None)?;
    }
    Ok(())
}
