//! `benchkit replay merge DIR_OR_FILES... [--save-result out.json]`: one result from the shards
//! of a replay (`benchkit replay --shard I/N --shard-dir DIR`). Flags are parsed by
//! [`benchkit::cli::replay_shard`]; the merge is [`benchkit::replay::shard::merge`]'s.
//!
//! ```sh
//! benchkit replay --target http ... --shard 0/2 --shard-dir shards --start-at "$T" &
//! benchkit replay --target http ... --shard 1/2 --shard-dir shards --start-at "$T" &
//! wait
//! benchkit replay merge shards --save-result merged.json
//! ```

use benchkit::cli::replay_shard::ReplayMergeArgs;

/// `benchkit replay merge ARGS`: `argv` starts with the program name.
pub fn main(argv: Vec<String>) -> anyhow::Result<()> {
    let args = ReplayMergeArgs::try_parse_argv(argv).unwrap_or_else(|e| e.exit());
    let result = benchkit::replay::shard::merge(&args.inputs)?;
    let text = serde_json::to_string_pretty(&result)?;
    match &args.save_result {
        Some(p) => std::fs::write(p, &text)?,
        None => println!("{text}"),
    }
    let s = &result.summary;
    eprintln!(
        "merged {} shards: {} completed, {} failed, {:.3} s, {:.2} req/s",
        result.provenance.settings.get("merge").and_then(|m| m.get("shards")).cloned().unwrap_or_default(),
        s.completed,
        s.failed,
        s.duration,
        s.request_throughput
    );
    Ok(())
}
