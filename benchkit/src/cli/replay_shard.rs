//! `benchkit replay --shard I/N --shard-dir DIR [--start-at T]` and `benchkit replay merge`:
//! load from many processes and machines (see [`crate::replay::shard`]).

use super::CliError;
use crate::replay::shard::{parse_start_at, ShardConfig, ShardSpec};
use clap::Parser;
use std::path::PathBuf;

/// The shard flags of `benchkit replay`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShardArgs {
    /// Run shard I of N of the schedule (conversation k goes to shard k % N); every shard
    /// takes the same workload, seed and rate flags. Needs --shard-dir; http targets only.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<ShardSpec>,
    /// Where the shard writes shard-I-of-N.json (histograms, counters, its result) and, unless
    /// --save-requests says otherwise, shard-I-of-N.requests.jsonl.
    #[arg(long, value_name = "DIR")]
    pub shard_dir: Option<PathBuf>,
    /// The agreed start of every shard: RFC 3339 (2026-12-05T21:00:00Z) or unix seconds. The
    /// shard waits for it; one that is ready only after it fails. Without it each shard starts
    /// when ready and the merge aligns them on the earliest start.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
}

impl ShardArgs {
    /// The shard, if `--shard` was given.
    ///
    /// # Errors
    /// [`CliError`] for `--shard` without `--shard-dir`, `--shard-dir` or `--start-at` without
    /// `--shard`, or a start time that is neither RFC 3339 nor unix seconds.
    pub fn config(&self) -> Result<Option<ShardConfig>, CliError> {
        let Some(spec) = self.shard else {
            return match (&self.shard_dir, &self.start_at) {
                (None, None) => Ok(None),
                (Some(_), _) => Err(CliError::Missing { flag: "--shard", why: "--shard-dir is where a shard writes" }),
                (_, Some(_)) => {
                    Err(CliError::Missing { flag: "--shard", why: "--start-at is the shards' agreed start" })
                }
            };
        };
        let dir = self
            .shard_dir
            .clone()
            .ok_or(CliError::Missing { flag: "--shard-dir", why: "a shard writes its histograms and records there" })?;
        let mut config = ShardConfig::new(spec, dir);
        if let Some(t) = &self.start_at {
            config = config.start_at(parse_start_at(t)?);
        }
        Ok(Some(config))
    }
}

/// `benchkit replay merge`'s flags.
#[derive(Parser, Debug)]
#[command(
    name = "benchkit replay merge",
    about = "Merge the shards of a replay (benchkit replay --shard I/N) into one result"
)]
pub struct ReplayMergeArgs {
    /// Shard directories (their shard-I-of-N.json files) or shard files.
    #[arg(required = true, value_name = "DIR_OR_FILE")]
    pub inputs: Vec<PathBuf>,
    /// Write the merged result JSON here instead of standard output.
    #[arg(long)]
    pub save_result: Option<PathBuf>,
}

impl ReplayMergeArgs {
    /// Parses `argv` (program name first).
    ///
    /// # Errors
    /// clap's error (its `exit()` prints usage), for unknown flags and `--help`.
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::shard::unix_ns;

    fn shard(flags: &str) -> Result<Option<ShardConfig>, CliError> {
        #[derive(Parser)]
        struct A {
            #[command(flatten)]
            s: ShardArgs,
        }
        let argv = std::iter::once("x").chain(flags.split_whitespace());
        A::try_parse_from(argv).unwrap().s.config()
    }

    #[test]
    fn shard_flags_make_a_shard() {
        assert_eq!(shard("").unwrap(), None);
        let c = shard("--shard 1/3 --shard-dir out --start-at 1700000000.25").unwrap().unwrap();
        assert_eq!((c.spec, c.dir.as_path()), (ShardSpec { index: 1, count: 3 }, std::path::Path::new("out")));
        assert_eq!(c.start_at.map(unix_ns), Some(1_700_000_000_250_000_000));
        let c = shard("--shard 0/1 --shard-dir o --start-at 2023-11-14T22:13:20.5+00:00").unwrap().unwrap();
        assert_eq!(c.start_at.map(unix_ns), Some(1_700_000_000_500_000_000));
        assert_eq!(c.result_path(), PathBuf::from("o/shard-0-of-1.json"));
        assert_eq!(c.records_path(), PathBuf::from("o/shard-0-of-1.requests.jsonl"));
    }

    #[test]
    fn incomplete_or_bad_shard_flags_are_refused() {
        for (flags, expect) in [
            ("--shard 0/2", "--shard-dir"),
            ("--shard-dir d", "--shard"),
            ("--start-at 5", "--shard"),
            ("--shard 0/2 --shard-dir d --start-at tomorrow", "start time"),
            ("--shard 0/2 --shard-dir d --start-at=-5", "start time"),
        ] {
            let e = shard(flags).unwrap_err().to_string();
            assert!(e.contains(expect), "{flags}: {e}");
        }
        #[derive(Parser, Debug)]
        struct A {
            #[command(flatten)]
            _s: ShardArgs,
        }
        for bad in ["2/2", "1", "a/b", "0/0", "-1/2"] {
            assert!(A::try_parse_from(["x", "--shard", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn merge_takes_directories_and_files() {
        let a = ReplayMergeArgs::try_parse_argv(["m", "d1", "f.json", "--save-result", "o.json"].map(String::from))
            .unwrap();
        assert_eq!(a.inputs, vec![PathBuf::from("d1"), PathBuf::from("f.json")]);
        assert_eq!(a.save_result, Some(PathBuf::from("o.json")));
        assert!(ReplayMergeArgs::try_parse_argv(["m"].map(String::from)).is_err());
    }
}
