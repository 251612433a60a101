//! A replay that checks its own client. Peers report runs in which the load generator was the
//! bottleneck as server latency (AIPerf #1424, vLLM #39963); here such a run says so itself:
//!
//! * **Schedule lag**: the p99 of `sent - scheduled` above [`ClientCheckConfig::max_schedule_lag_ms`]
//!   means requests left late, so the offered load was not the one asked for. The lag is split
//!   by cause ([`LagBreakdown`]) to tell a late dispatcher from busy workers or connection waits.
//! * **Client CPU**: the CPU time (user + system, every thread) this process used while the
//!   requests ran, divided by the wall time of the run and by the cores the client could use
//!   (its async runtime's worker threads, at most the CPUs it may run on). Above
//!   [`ClientCheckConfig::max_client_cpu`] the client had no headroom: a queue served at
//!   utilisation ρ waits in proportion to ρ / (1 - ρ), so bursts of arrivals queue behind each
//!   other even when the mean rate fits. Only where the client is separable from the engine
//!   (HTTP targets): an in-process engine shares the process, and its CPU is not the client's.
//! * **Token counts** ([`TokenCheck`]): the client-side prompt lengths against the server's own
//!   `/tokenize`, where it offers one.
//!
//! A run that fails either saturation check is marked `invalid: client saturated ...` in its
//! result (and stored with status `invalid`); the figures and thresholds are in the result.

use super::lag::LagBreakdown;
use super::metrics::LatencyStats;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Thresholds of the client self-check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientCheckConfig {
    /// Largest acceptable p99 schedule lag, ms.
    pub max_schedule_lag_ms: f64,
    /// Largest acceptable client CPU, as a fraction of the cores the client could use.
    pub max_client_cpu: f64,
    /// Distinct prompts checked against the server's `/tokenize` (0: no check).
    pub tokenize_limit: usize,
}

impl Default for ClientCheckConfig {
    /// 1 ms of p99 lag (the bound; the client keeps 20,000 req/s well under it);
    /// 0.9 of the usable cores (above that the M/D/1 queueing of a burst reaches several
    /// service times, and the lag check alone may miss a short run); 1,000 prompts.
    fn default() -> Self {
        ClientCheckConfig { max_schedule_lag_ms: 1.0, max_client_cpu: 0.9, tokenize_limit: 1000 }
    }
}

/// The client's CPU over a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClientCpu {
    /// CPU time of this process (user + system, all threads), seconds.
    pub cpu_s: f64,
    /// Wall time it was measured over, seconds.
    pub wall_s: f64,
    /// Cores the client could use: its runtime's worker threads, at most the CPUs available
    /// to the process (affinity and cgroup quota).
    pub usable_cores: usize,
    /// `cpu_s / wall_s / usable_cores`.
    pub fraction: f64,
    /// Time this process's threads were runnable but had no CPU (another process held it: the
    /// server, other load), seconds over the run (`/proc/self/task/*/schedstat`; `None` where
    /// the kernel does not keep it). Large next to a large lag: the machine, not the client's
    /// own work, held the requests back.
    #[serde(default)]
    pub runqueue_wait_s: Option<f64>,
}

/// Measures this process's CPU time from [`CpuMeter::start`] to [`CpuMeter::finish`].
#[derive(Debug)]
pub struct CpuMeter {
    cpu_s: Option<f64>,
    runqueue_s: Option<f64>,
    wall: Instant,
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn start() -> Self {
        CpuMeter { cpu_s: process_cpu_s(), runqueue_s: runqueue_wait_s(), wall: Instant::now() }
    }

    /// The CPU since the start, for a client on `workers` runtime threads.
    ///
    /// # Errors
    /// Why it could not be measured (no `getrusage`).
    pub fn finish(&self, workers: usize) -> Result<ClientCpu, String> {
        let wall_s = self.wall.elapsed().as_secs_f64();
        let (Some(a), Some(b)) = (self.cpu_s, process_cpu_s()) else {
            return Err("the process's CPU time is not available (getrusage failed)".into());
        };
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let usable_cores = workers.clamp(1, cpus);
        let cpu_s = (b - a).max(0.0);
        let fraction = if wall_s > 0.0 { cpu_s / wall_s / usable_cores as f64 } else { 0.0 };
        let runqueue_wait_s = self.runqueue_s.zip(runqueue_wait_s()).map(|(a, b)| (b - a).max(0.0));
        Ok(ClientCpu { cpu_s, wall_s, usable_cores, fraction, runqueue_wait_s })
    }
}

/// Seconds the threads of this process (those alive now) have waited runnable for a CPU: the
/// second field of each `/proc/self/task/*/schedstat`.
pub fn runqueue_wait_s() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// User + system CPU seconds of this process so far.
fn process_cpu_s() -> Option<f64> {
    // SAFETY: getrusage fills the zeroed struct it is given and reads nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(ru.ru_utime) + secs(ru.ru_stime))
}

/// The client's own verdict on a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientCheck {
    /// Measured p99 schedule lag, ms (non-warmup requests); with `max_concurrency`, less the
    /// waits for a slot (`schedule_lag_parts.client`).
    pub schedule_lag_p99_ms: f64,
    /// Its threshold, ms.
    pub max_schedule_lag_ms: f64,
    /// The lag split by cause.
    pub schedule_lag_parts: LagBreakdown,
    /// Measured client CPU (`None`: not measured; see `client_cpu_unchecked`).
    pub client_cpu: Option<ClientCpu>,
    /// Its threshold, a fraction of the usable cores.
    pub max_client_cpu: f64,
    /// Why the client CPU was not checked (in-process targets: the engine shares the process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cpu_unchecked: Option<String>,
    /// The client was the bottleneck: a threshold was exceeded.
    pub saturated: bool,
    /// Client-side prompt lengths against the server's tokenizer.
    pub tokens: TokenCheck,
}

impl ClientCheck {
    /// Decides on a run: `lag` is its schedule-lag statistics, `cpu` the client's CPU or why
    /// it is not checked.
    pub fn assess(
        config: &ClientCheckConfig,
        lag: &LatencyStats,
        parts: LagBreakdown,
        cpu: Result<ClientCpu, String>,
        tokens: TokenCheck,
    ) -> Self {
        // With max_concurrency, waits for a slot are the bound at work, not the client.
        let behind_slots = parts.slot_wait.count > 0;
        let lag_p99 = if behind_slots { parts.client.p99_ms } else { lag.p99_ms };
        let lag_over = lag.count > 0 && lag_p99 > config.max_schedule_lag_ms;
        let (client_cpu, client_cpu_unchecked) = match cpu {
            Ok(c) => (Some(c), None),
            Err(why) => (None, Some(why)),
        };
        let cpu_over = client_cpu.is_some_and(|c| c.fraction > config.max_client_cpu);
        ClientCheck {
            schedule_lag_p99_ms: lag_p99,
            max_schedule_lag_ms: config.max_schedule_lag_ms,
            schedule_lag_parts: parts,
            client_cpu,
            max_client_cpu: config.max_client_cpu,
            client_cpu_unchecked,
            saturated: lag_over || cpu_over,
            tokens,
        }
    }

    /// `client saturated: ...` with the figures that exceeded their thresholds, or `None`.
    pub fn invalid_reason(&self) -> Option<String> {
        if !self.saturated {
            return None;
        }
        let mut why = Vec::new();
        if self.schedule_lag_p99_ms > self.max_schedule_lag_ms {
            why.push(format!("schedule-lag p99 {:.3} ms > {} ms", self.schedule_lag_p99_ms, self.max_schedule_lag_ms));
        }
        if let Some(c) = self.client_cpu.filter(|c| c.fraction > self.max_client_cpu) {
            why.push(format!(
                "client CPU {:.0}% of {} usable core(s) > {:.0}%",
                c.fraction * 100.0,
                c.usable_cores,
                self.max_client_cpu * 100.0
            ));
        }
        if let Some((w, wall)) = self.client_cpu.and_then(|c| Some((c.runqueue_wait_s?, c.wall_s))) {
            // Not a threshold: where the time went, for whoever reads the reason.
            why.push(format!("its threads waited {:.0} ms per second for a CPU", w * 1e3 / wall.max(1e-9)));
        }
        Some(format!("client saturated: {}", why.join("; ")))
    }
}

/// Client-side prompt lengths checked against the server's `/tokenize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenCheck {
    /// The URL asked (`None`: none was).
    pub endpoint: Option<String>,
    /// The request shape the server took: `llama.cpp` (`content`) or `vllm` (`prompt`).
    pub api: Option<String>,
    /// Distinct prompts compared.
    pub prompts_checked: usize,
    /// Prompts not compared: over the limit, or not a single text (multi-turn, token ids).
    pub prompts_skipped: usize,
    /// Prompts whose counts differ.
    pub disagreements: usize,
    /// Largest |client - server| count.
    pub max_abs_diff: u64,
    /// Mean |client - server| over the prompts compared.
    pub mean_abs_diff: f64,
    /// The first few disagreements.
    pub examples: Vec<TokenDisagreement>,
    /// Why nothing was compared (no endpoint, HTTP 404, an error, turned off, in-process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Why the comparison stopped early (an error after some prompts were compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// One prompt whose counts differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenDisagreement {
    /// The first request with this prompt.
    pub request_id: u64,
    /// benchkit's count.
    pub client: u64,
    /// The server's.
    pub server: u64,
}

/// Disagreements kept as examples.
const EXAMPLES: usize = 5;

impl TokenCheck {
    /// Nothing compared, for `reason`.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        TokenCheck { unavailable: Some(reason.into()), ..Self::default() }
    }

    /// Adds one comparison.
    pub fn compare(&mut self, request_id: u64, client: u64, server: u64) {
        let diff = client.abs_diff(server);
        let n = self.prompts_checked as f64;
        self.mean_abs_diff = (self.mean_abs_diff * n + diff as f64) / (n + 1.0);
        self.prompts_checked += 1;
        self.max_abs_diff = self.max_abs_diff.max(diff);
        if diff != 0 {
            self.disagreements += 1;
            if self.examples.len() < EXAMPLES {
                self.examples.push(TokenDisagreement { request_id, client, server });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(p99_ms: f64) -> LatencyStats {
        LatencyStats { count: 100, p99_ms, ..LatencyStats::default() }
    }

    fn cpu(fraction: f64) -> Result<ClientCpu, String> {
        Ok(ClientCpu { cpu_s: fraction * 2.0, wall_s: 2.0, usable_cores: 1, fraction, runqueue_wait_s: None })
    }

    fn assess(p99: f64, c: Result<ClientCpu, String>) -> ClientCheck {
        ClientCheck::assess(&ClientCheckConfig::default(), &lag(p99), LagBreakdown::default(), c, TokenCheck::default())
    }

    #[test]
    fn either_threshold_flags_the_run() {
        assert_eq!(assess(0.5, cpu(0.5)).invalid_reason(), None);
        let r = assess(4.2, cpu(0.5)).invalid_reason().unwrap();
        assert!(r.starts_with("client saturated: schedule-lag p99 4.200 ms > 1 ms"), "{r}");
        assert!(!r.contains("CPU"), "{r}");
        let r = assess(0.2, cpu(0.95)).invalid_reason().unwrap();
        assert_eq!(r, "client saturated: client CPU 95% of 1 usable core(s) > 90%");
        let both = assess(3.0, cpu(1.0)).invalid_reason().unwrap();
        assert!(both.contains("schedule-lag") && both.contains("CPU"), "{both}");
        // Run-queue wait is context for the reader, never a reason on its own.
        let waited = Ok(ClientCpu { runqueue_wait_s: Some(0.5), ..cpu(0.1).unwrap() });
        assert_eq!(assess(0.5, waited.clone()).invalid_reason(), None);
        let r = assess(2.0, waited).invalid_reason().unwrap();
        assert!(r.ends_with("; its threads waited 250 ms per second for a CPU"), "{r}");
    }

    #[test]
    fn waits_for_a_concurrency_slot_do_not_flag_the_client() {
        let part = |p99_ms: f64| crate::replay::LagPart { count: 10, p99_ms, ..Default::default() };
        let parts = LagBreakdown { slot_wait: part(900.0), client: part(0.2), ..LagBreakdown::default() };
        let c = ClientCheck::assess(&ClientCheckConfig::default(), &lag(900.0), parts, cpu(0.1), TokenCheck::default());
        assert!(!c.saturated, "{c:?}");
        assert_eq!(c.schedule_lag_p99_ms, 0.2);
        let parts = LagBreakdown { client: part(3.0), ..parts };
        let c = ClientCheck::assess(&ClientCheckConfig::default(), &lag(900.0), parts, cpu(0.1), TokenCheck::default());
        assert!(c.saturated, "the client's own lag still counts");
    }

    #[test]
    fn thresholds_are_strict_and_unchecked_cpu_does_not_flag() {
        assert!(!assess(1.0, cpu(0.9)).saturated, "equal to the threshold passes");
        let c = assess(0.1, Err("in-process target".into()));
        assert!(!c.saturated);
        assert_eq!(c.client_cpu_unchecked.as_deref(), Some("in-process target"));
        let config = ClientCheckConfig { max_schedule_lag_ms: 10.0, max_client_cpu: 0.99, tokenize_limit: 0 };
        let c = ClientCheck::assess(&config, &lag(5.0), LagBreakdown::default(), cpu(0.95), TokenCheck::default());
        assert!(!c.saturated, "thresholds come from the config");
        // No request measured: no lag to judge.
        let none = LatencyStats { count: 0, p99_ms: 50.0, ..LatencyStats::default() };
        let c = ClientCheck::assess(&config, &none, LagBreakdown::default(), cpu(0.1), TokenCheck::default());
        assert!(!c.saturated);
    }

    #[test]
    fn token_comparisons_accumulate() {
        let mut t = TokenCheck::default();
        t.compare(0, 10, 10);
        t.compare(1, 10, 13);
        t.compare(2, 8, 7);
        assert_eq!((t.prompts_checked, t.disagreements, t.max_abs_diff), (3, 2, 3));
        assert!((t.mean_abs_diff - 4.0 / 3.0).abs() < 1e-12);
        assert_eq!(t.examples[0], TokenDisagreement { request_id: 1, client: 10, server: 13 });
        for i in 0..10 {
            t.compare(10 + i, 1, 2);
        }
        assert_eq!(t.examples.len(), EXAMPLES);
        assert_eq!(TokenCheck::unavailable("HTTP 404").unavailable.as_deref(), Some("HTTP 404"));
    }

    #[test]
    fn cpu_meter_measures_this_process() {
        let m = CpuMeter::start();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 30 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let c = m.finish(1).unwrap();
        assert!(x > 0 && c.cpu_s > 0.0 && c.wall_s >= 0.03, "{c:?}");
        assert_eq!(c.usable_cores, 1);
        assert!(c.fraction > 0.0);
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(m.finish(1000).unwrap().usable_cores, cpus, "at most the CPUs available");
    }
}
