//! `benchkit replay`'s shared-prefix and trace flags, and `--dataset`'s names.
//!
//! `--dataset` takes `sharegpt`, `synthetic`, `shared-prefix`, `trace:PATH` or a ShareGPT file's
//! path. `--num-prompts` defaults to 100, to every prompt of a shared-prefix dataset (groups x
//! prompts per group), or to the whole trace.

use super::replay::ReplayArgs;
use super::CliError;
use crate::replay::workload::{Arrival, LengthDist, SharedPrefixConfig};
use crate::replay::{DatasetSource, WorkloadConfig};
use std::path::PathBuf;

/// `--num-prompts` when it is not given, for ShareGPT and synthetic datasets.
const DEFAULT_NUM_PROMPTS: usize = 100;

/// Flags of the shared-prefix and trace datasets.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct DatasetArgs {
    /// Shared prefix: system prompts (groups).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub shared_prefix_groups: usize,
    /// Shared prefix: questions per system prompt.
    #[arg(long, default_value_t = 8, value_name = "M")]
    pub shared_prefix_prompts_per_group: usize,
    /// Shared prefix: tokens of each system prompt.
    #[arg(long, default_value_t = 256, value_name = "TOKENS")]
    pub shared_prefix_system_len: u32,
    /// Shared prefix: tokens of each question.
    #[arg(long, default_value_t = 32, value_name = "TOKENS")]
    pub shared_prefix_question_len: u32,
    /// Trace: tokens per hash id (Mooncake's 512).
    #[arg(long, default_value_t = crate::replay::workload::MOONCAKE_BLOCK_SIZE, value_name = "TOKENS")]
    pub trace_block_size: u32,
    /// Trace: multiply the recorded gaps by X (0.5 replays twice as fast; 0 all at once).
    #[arg(long, value_name = "X")]
    pub trace_time_scale: Option<f64>,
}

impl ReplayArgs {
    /// The trace file of `--dataset trace:PATH`.
    fn trace_path(&self) -> Option<&str> {
        self.dataset.strip_prefix("trace:")
    }

    /// The workload: `--dataset`, `--num-prompts`, `--seed`, `--output-len`, `--multi-turn`
    /// and the dataset's own flags.
    pub fn workload(&self) -> WorkloadConfig {
        let d = &self.datasets;
        let (dataset, default_prompts) = match (self.dataset.as_str(), self.trace_path()) {
            (_, Some(path)) => {
                // 0: the whole trace (see `DatasetSource::Trace`).
                (DatasetSource::Trace { path: PathBuf::from(path), block_size: d.trace_block_size }, 0)
            }
            ("synthetic", _) => (
                DatasetSource::Synthetic {
                    input_len: LengthDist::Fixed(self.synthetic_input),
                    output_len: LengthDist::Fixed(self.synthetic_output),
                },
                DEFAULT_NUM_PROMPTS,
            ),
            ("shared-prefix", _) => {
                let sp = SharedPrefixConfig {
                    groups: d.shared_prefix_groups,
                    prompts_per_group: d.shared_prefix_prompts_per_group,
                    system_prompt_len: d.shared_prefix_system_len,
                    question_len: d.shared_prefix_question_len,
                    output_len: self.output_len.map_or(self.synthetic_output, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                };
                let all = sp.distinct_prompts();
                (DatasetSource::SharedPrefix(sp), all)
            }
            ("sharegpt", _) => (DatasetSource::ShareGpt { path: None }, DEFAULT_NUM_PROMPTS),
            (path, _) => (DatasetSource::ShareGpt { path: Some(PathBuf::from(path)) }, DEFAULT_NUM_PROMPTS),
        };
        WorkloadConfig {
            dataset,
            num_prompts: self.num_prompts.unwrap_or(default_prompts),
            seed: self.seed,
            fixed_output_len: self.output_len,
            multi_turn: self.multi_turn,
        }
    }

    /// A trace's arrivals: its recorded times scaled by `--trace-time-scale`; `None` for
    /// other datasets.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for `--request-rate`, `--burstiness` or `--constant-rate` with a
    /// trace (its timestamps are the arrivals), `--trace-time-scale` without one, or a scale
    /// that is not a finite number >= 0.
    pub(crate) fn recorded_arrival(&self) -> Result<Option<Arrival>, CliError> {
        let Some(_) = self.trace_path() else {
            return match self.datasets.trace_time_scale {
                Some(_) => Err(CliError::invalid("--trace-time-scale", "only applies to --dataset trace:PATH")),
                None => Ok(None),
            };
        };
        if self.request_rate.trim() != "inf" || self.constant_rate || self.burstiness != 1.0 {
            return Err(CliError::invalid(
                "--request-rate",
                "a trace arrives at its own timestamps: scale them with --trace-time-scale instead of \
                 --request-rate, --burstiness or --constant-rate",
            ));
        }
        let arrival = Arrival::Recorded { time_scale: self.datasets.trace_time_scale.unwrap_or(1.0) };
        arrival.validate().map_err(|e| CliError::invalid("--trace-time-scale", e))?;
        Ok(Some(arrival))
    }
}

#[cfg(test)]
mod tests {
    use super::super::replay::ReplayArgs;
    use crate::replay::workload::{Arrival, SharedPrefixConfig};
    use crate::replay::DatasetSource;

    fn args(flags: &str) -> ReplayArgs {
        let argv = std::iter::once("benchkit replay".to_string()).chain(flags.split_whitespace().map(String::from));
        ReplayArgs::try_parse_argv(argv).unwrap()
    }

    #[test]
    fn shared_prefix_flags_and_prompt_count() {
        let w =
            args("--dataset shared-prefix --shared-prefix-groups 2 --shared-prefix-prompts-per-group 3 --output-len 7")
                .workload();
        let sp = SharedPrefixConfig {
            groups: 2,
            prompts_per_group: 3,
            system_prompt_len: 256,
            question_len: 32,
            output_len: 7,
        };
        assert_eq!((w.dataset, w.num_prompts, w.fixed_output_len), (DatasetSource::SharedPrefix(sp), 6, Some(7)));
        let w = args("--dataset shared-prefix --synthetic-output 9").workload();
        assert!(matches!(w.dataset, DatasetSource::SharedPrefix(SharedPrefixConfig { output_len: 9, .. })));
        assert_eq!(args("--dataset shared-prefix --num-prompts 5").workload().num_prompts, 5);
        assert_eq!(args("--dataset shared-prefix").workload().num_prompts, 32);
        assert_eq!(args("--dataset synthetic").workload().num_prompts, 100);
        assert_eq!(args("").schedule().unwrap().arrival, Arrival::AllAtOnce);
    }

    #[test]
    fn traces_keep_their_times() {
        let a = args("--dataset trace:/t.jsonl --trace-block-size 16 --trace-time-scale 0.5");
        let w = a.workload();
        assert_eq!(w.dataset, DatasetSource::Trace { path: "/t.jsonl".into(), block_size: 16 });
        assert_eq!(w.num_prompts, 0, "the whole trace");
        assert_eq!(a.schedule().unwrap().arrival, Arrival::Recorded { time_scale: 0.5 });
        assert_eq!(args("--dataset trace:t --num-prompts 3").workload().num_prompts, 3);
        assert_eq!(args("--dataset trace:t").schedule().unwrap().arrival, Arrival::Recorded { time_scale: 1.0 });
        for (bad, flag) in [
            ("--dataset trace:t --request-rate 4", "--request-rate"),
            ("--dataset trace:t --constant-rate", "--request-rate"),
            ("--dataset trace:t --trace-time-scale=-1", "--trace-time-scale"),
            ("--dataset synthetic --trace-time-scale 2", "--trace-time-scale"),
        ] {
            let e = args(bad).schedule().unwrap_err().to_string();
            assert!(e.starts_with(flag), "{bad}: {e}");
        }
    }
}
