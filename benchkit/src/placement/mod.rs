//! The placement harness: which scheduler (sched_ext's included), thread placement and NUMA
//! memory policy runs a workload fastest, with every claim about a trial verified.
//!
//! - [`Arm`]: CPUs (a [`CpuPreset`](crate::topology::CpuPreset)), strict pinning, scheduling
//!   policy and nice, memory policy, and optionally a sched_ext scheduler program
//!   ([`parse_arm`], [`parse_arms_file`]).
//! - The supervisor applies an arm to each worker between fork and exec ([`Probe`] in
//!   [`TrialConfig::placement`](crate::supervise::TrialConfig::placement)), so every thread
//!   inherits it; the arm's CPUs also become llama.cpp's threadpool mask, and a memory policy
//!   loads the model without mmap (page-cache pages keep the node they were first read on).
//! - While a trial runs, the worker is observed from outside ([`observe()`]): each thread's
//!   `Cpus_allowed_list`, policy, nice and `ext.enabled`, its memory's pages per node and
//!   policy from `numa_maps`. A mismatch with the request invalidates the trial, with why.
//! - A sched_ext arm attaches its scheduler around each trial (`state` must read `disabled`
//!   first), checks `state`, `ops`, `enable_seq` and the process at the trial's end, and
//!   always detaches ([`AttachedScheduler`]). Other arms assert `disabled` throughout.
//! - Workloads ([`Workload`]): a bench grid, a perplexity run, an in-process replay, or an
//!   HTTP replay against a server the harness starts placed for each trial ([`ServerSpec`]).
//! - [`PlacementConfig::run`] runs arms × rounds in a seeded interleaved order and returns a
//!   [`PlacementReport`]: per arm the samples, median and bootstrap CI, the ratio to the
//!   baseline with its CI and a Mann-Whitney p-value, as JSON (serde) or a markdown table.
//!
//! Linux only: elsewhere [`PlacementConfig::run`] returns [`PlacementError::Unsupported`].

mod apply;
mod observe;
mod probe;
mod spec;

#[cfg(feature = "placement")]
mod child;
#[cfg(feature = "placement")]
mod harness;
#[cfg(feature = "placement")]
mod report;
#[cfg(feature = "placement")]
mod scx;
#[cfg(all(feature = "placement", feature = "replay-http"))]
mod served;
#[cfg(test)]
mod tests;

pub use apply::sched_ext_policy_supported;
pub use observe::{mismatches, observe, ExtExpect, MemoryObservation, Observation, ThreadObservation};
pub use probe::Probe;
pub use spec::{
    parse_arm, policy_name, Arm, MemMode, MemPolicy, NodeSet, Placement, Requested, RequestedMem, SchedPolicy,
    SchedulerSpec, DEFAULT_SCX_TIMEOUT, SCHED_EXT,
};

#[cfg(feature = "placement")]
pub use harness::{PlacementConfig, Workload};
#[cfg(feature = "placement")]
pub use report::{ArmSummary, ObservedSummary, PlacementReport, TrialResult};
#[cfg(feature = "placement")]
pub use scx::{preflight, AttachedScheduler, DetachReport, ScxError, ScxSnapshot, ScxSysfs, SCHED_EXT_SYSFS};
#[cfg(all(feature = "placement", feature = "replay-http"))]
pub use served::{ServerSpec, PORT_PLACEHOLDER};
#[cfg(feature = "placement")]
pub use spec::{parse_arms_file, split_words};

/// Errors configuring a placement comparison (a trial whose placement did not hold is a
/// result, not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// A value that does not parse.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// The key or flag.
        what: String,
        /// The value given.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// An arm that cannot be run as asked.
    #[error("arm {arm:?}: {reason}")]
    Arm {
        /// The arm.
        arm: String,
        /// Why.
        reason: String,
    },
    /// An arms file that does not parse.
    #[error("arms file: {0}")]
    ArmsFile(String),
    /// The machine's topology could not be read.
    #[error(transparent)]
    Topology(#[from] crate::topology::TopologyError),
    /// A workload that cannot be placed.
    #[error("workload: {0}")]
    Workload(String),
    /// The workload's own parameters are invalid.
    #[cfg(feature = "bench")]
    #[error(transparent)]
    Bench(#[from] crate::bench::ParamError),
    /// Not Linux.
    #[error("the placement harness needs Linux (sched_setaffinity, set_mempolicy, /proc, sched_ext)")]
    Unsupported,
}

impl PlacementError {
    pub(crate) fn invalid(what: &str, value: &str, reason: &str) -> Self {
        PlacementError::Invalid { what: what.into(), value: value.into(), reason: reason.into() }
    }
}
