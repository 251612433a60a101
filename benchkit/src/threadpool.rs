//! ggml's CPU threadpool: thread count, CPU mask, strict placement, priority and polling.
//!
//! llama-bench applies `-t`, `-C`, `--cpu-strict`, `--prio` and `--poll` through such a pool
//! attached to the context; benchkit does the same.

use llama_sys as sys;
use std::ptr::NonNull;

/// Errors building a threadpool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThreadPoolError {
    /// Zero threads, or more than ggml supports.
    #[error("invalid thread count {n}: must be between 1 and {max}")]
    InvalidThreads {
        /// Requested count.
        n: usize,
        /// ggml's limit.
        max: usize,
    },
    /// The mask names CPUs this machine does not have.
    #[error("cpu mask names CPU {cpu}, but this machine has CPUs 0..{n_cpus} (mask {mask})")]
    NoSuchCpu {
        /// First missing CPU.
        cpu: usize,
        /// CPUs present.
        n_cpus: usize,
        /// The mask as given.
        mask: String,
    },
    /// The mask selects no CPU.
    #[error("cpu mask {0} selects no CPU")]
    EmptyMask(String),
    /// The mask string could not be parsed.
    #[error("invalid cpu mask {mask:?}: {reason} (expected hex like 0xff, as llama-bench's -C takes)")]
    ParseMask {
        /// The mask as given.
        mask: String,
        /// What is wrong with it (not hex, a CPU beyond the machine's, ...).
        reason: String,
    },
    /// Polling level above 100.
    #[error("invalid poll level {0}: must be 0..=100")]
    InvalidPoll(u32),
    /// ggml could not create the pool.
    #[error("ggml could not create a threadpool with {0} threads")]
    CreateFailed(usize),
}

/// Maximum threads (and mask bits) ggml supports.
pub const MAX_THREADS: usize = sys::GGML_MAX_N_THREADS as usize;

/// A set of CPUs, parsed from llama-bench's hex notation (`0x3` = CPUs 0 and 1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuMask {
    bits: Vec<bool>,
    text: String,
}

impl CpuMask {
    /// Parses a hex mask (`0x` prefix optional), bit i = CPU i.
    ///
    /// # Errors
    /// [`ThreadPoolError::ParseMask`] for non-hex text or more than 512 bits.
    pub fn parse(mask: &str) -> Result<Self, ThreadPoolError> {
        let err = |reason: &str| ThreadPoolError::ParseMask { mask: mask.to_string(), reason: reason.into() };
        let hex = mask.trim().trim_start_matches("0x").trim_start_matches("0X");
        if hex.is_empty() {
            return Err(err("empty"));
        }
        let mut bits = Vec::new();
        for c in hex.chars().rev() {
            let v = c.to_digit(16).ok_or_else(|| err(&format!("{c:?} is not a hex digit")))?;
            for b in 0..4 {
                bits.push(v & (1 << b) != 0);
            }
        }
        while bits.last() == Some(&false) {
            bits.pop();
        }
        if bits.len() > MAX_THREADS {
            return Err(err(&format!("more than {MAX_THREADS} CPUs")));
        }
        Ok(CpuMask { bits, text: mask.to_string() })
    }

    /// A mask of the given CPU indices.
    pub fn from_cpus(cpus: &[usize]) -> Self {
        let mut bits = vec![false; cpus.iter().max().map_or(0, |m| m + 1)];
        for &c in cpus {
            bits[c] = true;
        }
        let mut m = CpuMask { bits, text: String::new() };
        m.text = m.to_hex();
        m
    }

    /// CPU indices in the mask.
    pub fn cpus(&self) -> Vec<usize> {
        self.bits.iter().enumerate().filter(|(_, b)| **b).map(|(i, _)| i).collect()
    }

    /// `0x...` form, as llama-bench prints it.
    pub fn to_hex(&self) -> String {
        let mut s = String::new();
        for chunk in self.bits.chunks(4).rev() {
            let v: u32 = chunk.iter().enumerate().map(|(i, b)| (*b as u32) << i).sum();
            s.push(char::from_digit(v, 16).unwrap_or('0'));
        }
        let s = s.trim_start_matches('0');
        format!("0x{}", if s.is_empty() { "0" } else { s })
    }

    /// Checks every CPU in the mask exists on this machine.
    ///
    /// # Errors
    /// [`ThreadPoolError::NoSuchCpu`] or [`ThreadPoolError::EmptyMask`].
    pub fn validate(&self) -> Result<(), ThreadPoolError> {
        let cpus = self.cpus();
        if cpus.is_empty() {
            return Err(ThreadPoolError::EmptyMask(self.text.clone()));
        }
        let n_cpus = crate::system::n_cpus_configured();
        if let Some(&cpu) = cpus.iter().find(|&&c| c >= n_cpus) {
            return Err(ThreadPoolError::NoSuchCpu { cpu, n_cpus, mask: self.text.clone() });
        }
        Ok(())
    }
}

impl serde::Serialize for CpuMask {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for CpuMask {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CpuMask::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for CpuMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Scheduling priority of the pool's threads (llama-bench `--prio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Priority {
    /// Lowest (`-1`).
    Low,
    /// Default (`0`).
    #[default]
    Normal,
    /// `1`.
    Medium,
    /// `2`.
    High,
    /// `3`.
    Realtime,
}

impl Priority {
    /// From llama-bench's numeric `--prio` value.
    pub fn from_level(level: i32) -> Option<Self> {
        Some(match level {
            -1 => Priority::Low,
            0 => Priority::Normal,
            1 => Priority::Medium,
            2 => Priority::High,
            3 => Priority::Realtime,
            _ => return None,
        })
    }

    /// llama-bench's numeric value.
    pub fn level(self) -> i32 {
        match self {
            Priority::Low => -1,
            Priority::Normal => 0,
            Priority::Medium => 1,
            Priority::High => 2,
            Priority::Realtime => 3,
        }
    }

    fn raw(self) -> sys::ggml_sched_priority {
        match self {
            Priority::Low => sys::GGML_SCHED_PRIO_LOW,
            Priority::Normal => sys::GGML_SCHED_PRIO_NORMAL,
            Priority::Medium => sys::GGML_SCHED_PRIO_MEDIUM,
            Priority::High => sys::GGML_SCHED_PRIO_HIGH,
            Priority::Realtime => sys::GGML_SCHED_PRIO_REALTIME,
        }
    }
}

/// How to build a [`ThreadPool`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThreadPoolParams {
    /// Number of worker threads (including the caller).
    pub n_threads: usize,
    /// CPUs the threads may run on; `None` keeps the default affinity.
    pub cpu_mask: Option<CpuMask>,
    /// Pin thread i to the i-th CPU of the mask instead of letting them float over the mask.
    pub strict_cpu: bool,
    /// Thread priority.
    pub priority: Priority,
    /// Busy-wait level 0..=100 (llama-bench default 50).
    pub poll: u32,
}

impl ThreadPoolParams {
    /// `n` threads, default affinity, normal priority, poll 50 (llama-bench's defaults).
    pub fn new(n_threads: usize) -> Self {
        ThreadPoolParams { n_threads, cpu_mask: None, strict_cpu: false, priority: Priority::Normal, poll: 50 }
    }

    /// Checks the parameters against this machine.
    ///
    /// # Errors
    /// See [`ThreadPoolError`].
    pub fn validate(&self) -> Result<(), ThreadPoolError> {
        if self.n_threads == 0 || self.n_threads > MAX_THREADS {
            return Err(ThreadPoolError::InvalidThreads { n: self.n_threads, max: MAX_THREADS });
        }
        if self.poll > 100 {
            return Err(ThreadPoolError::InvalidPoll(self.poll));
        }
        if let Some(mask) = &self.cpu_mask {
            mask.validate()?;
        }
        Ok(())
    }
}

/// A ggml CPU threadpool. Attach it to a [`crate::Context`] with
/// [`crate::Context::attach_threadpool`].
#[derive(Debug)]
pub struct ThreadPool {
    ptr: NonNull<sys::ggml_threadpool>,
    params: ThreadPoolParams,
}

// SAFETY: a ggml threadpool is driven by the thread that calls into the context using it, and
// its own workers synchronise internally; the handle may move between threads.
unsafe impl Send for ThreadPool {}
// SAFETY: the only operations through a shared reference are pause/resume/query, which ggml
// guards with its own mutex.
unsafe impl Sync for ThreadPool {}

impl ThreadPool {
    /// Creates a pool.
    ///
    /// # Errors
    /// Invalid parameters (see [`ThreadPoolParams::validate`]) or a ggml failure.
    pub fn new(params: &ThreadPoolParams) -> Result<Self, ThreadPoolError> {
        params.validate()?;
        // SAFETY: plain constructor of a POD struct.
        let mut raw = unsafe { sys::ggml_threadpool_params_default(params.n_threads as i32) };
        if let Some(mask) = &params.cpu_mask {
            for cpu in mask.cpus() {
                raw.cpumask[cpu] = true;
            }
        }
        raw.strict_cpu = params.strict_cpu;
        raw.prio = params.priority.raw();
        raw.poll = params.poll;
        // SAFETY: `raw` is a fully initialised params struct that outlives the call.
        let ptr = unsafe { sys::ggml_threadpool_new(&mut raw) };
        let ptr = NonNull::new(ptr).ok_or(ThreadPoolError::CreateFailed(params.n_threads))?;
        Ok(ThreadPool { ptr, params: params.clone() })
    }

    /// Parameters it was built with.
    pub fn params(&self) -> &ThreadPoolParams {
        &self.params
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::ggml_threadpool {
        self.ptr.as_ptr()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // SAFETY: we own the pool; contexts that use it hold an Arc, so none is attached now.
        unsafe { sys::ggml_threadpool_free(self.ptr.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_llama_bench_masks() {
        let m = CpuMask::parse("0x5").unwrap();
        assert_eq!(m.cpus(), vec![0, 2]);
        assert_eq!(m.to_hex(), "0x5");
        assert_eq!(CpuMask::parse("ff").unwrap().cpus().len(), 8);
        assert_eq!(CpuMask::from_cpus(&[1, 4]).to_hex(), "0x12");
        assert!(matches!(CpuMask::parse("0xZZ"), Err(ThreadPoolError::ParseMask { .. })));
        assert!(matches!(CpuMask::parse(""), Err(ThreadPoolError::ParseMask { .. })));
    }

    #[test]
    fn rejects_missing_cpus_and_bad_params() {
        let mask = CpuMask::from_cpus(&[511]);
        assert!(matches!(mask.validate(), Err(ThreadPoolError::NoSuchCpu { cpu: 511, .. })));
        assert!(matches!(CpuMask::parse("0x0").unwrap().validate(), Err(ThreadPoolError::EmptyMask(_))));
        assert!(matches!(ThreadPool::new(&ThreadPoolParams::new(0)), Err(ThreadPoolError::InvalidThreads { .. })));
        let mut p = ThreadPoolParams::new(1);
        p.poll = 101;
        assert!(matches!(ThreadPool::new(&p), Err(ThreadPoolError::InvalidPoll(101))));
    }

    #[test]
    fn builds_a_pinned_pool() {
        let mut p = ThreadPoolParams::new(1);
        p.cpu_mask = Some(CpuMask::from_cpus(&[0]));
        p.strict_cpu = true;
        let pool = ThreadPool::new(&p).unwrap();
        assert_eq!(pool.params().n_threads, 1);
    }
}
