//! Arrival schedules: every request's send time, computed up front from a seed.

use std::collections::HashMap;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Gamma};

use super::WorkloadError;
use crate::replay::Request;

/// How requests arrive. Rates are requests per second.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Arrival {
    /// Every request at time 0 (vLLM's `--request-rate inf`).
    AllAtOnce,
    /// Evenly spaced: request `i` at `i / rate` seconds.
    Constant {
        /// Requests per second.
        rate: f64,
    },
    /// Poisson process: exponential inter-arrival times with mean `1 / rate`.
    Poisson {
        /// Requests per second.
        rate: f64,
    },
    /// Gamma inter-arrival times with shape `burstiness` and scale `1 / (rate * burstiness)`
    /// (mean `1 / rate`, as in vLLM). `burstiness = 1` is a Poisson process; below 1 is
    /// burstier, above 1 more regular.
    Gamma {
        /// Requests per second.
        rate: f64,
        /// Shape of the gamma distribution (coefficient of variation `1 / sqrt(burstiness)`).
        burstiness: f64,
    },
    /// The workload's own times (a trace's timestamps, which the workload puts in each
    /// request's `scheduled_ns`), multiplied by `time_scale`: 0.5 replays twice as fast, 2
    /// half as fast, 0 sends everything at once.
    Recorded {
        /// Factor applied to every recorded time (finite, >= 0).
        time_scale: f64,
    },
}

impl Arrival {
    /// The arrivals vLLM's `--request-rate`, `--burstiness` and benchkit's `--constant-rate`
    /// describe: all at once for `inf`, else gamma (Poisson at burstiness 1) or evenly spaced.
    pub fn from_rate(rate: super::super::RequestRate, burstiness: f64, constant: bool) -> Self {
        match rate {
            super::super::RequestRate::Inf(_) => Arrival::AllAtOnce,
            super::super::RequestRate::PerSecond(rate) if constant => Arrival::Constant { rate },
            super::super::RequestRate::PerSecond(rate) => Arrival::Gamma { rate, burstiness },
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    ///
    /// [`WorkloadError::InvalidRate`] unless the rate is finite and > 0;
    /// [`WorkloadError::InvalidBurstiness`] unless the burstiness is finite and > 0;
    /// [`WorkloadError::InvalidTimeScale`] unless a time scale is finite and >= 0.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let rate = match *self {
            Arrival::AllAtOnce => return Ok(()),
            Arrival::Recorded { time_scale } if time_scale.is_finite() && time_scale >= 0.0 => return Ok(()),
            Arrival::Recorded { time_scale } => return Err(WorkloadError::InvalidTimeScale { time_scale }),
            Arrival::Constant { rate } | Arrival::Poisson { rate } => rate,
            Arrival::Gamma { rate, burstiness } => {
                if !(burstiness.is_finite() && burstiness > 0.0) {
                    return Err(WorkloadError::InvalidBurstiness { burstiness });
                }
                rate
            }
        };
        if rate.is_finite() && rate > 0.0 {
            Ok(())
        } else {
            Err(WorkloadError::InvalidRate { rate })
        }
    }
}

/// A schedule: how requests arrive, from which seed, how many arrivals are warmup, and where
/// it stops. See [`schedule`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ScheduleConfig {
    /// Arrival process.
    pub arrival: Arrival,
    /// Seed of the arrival times.
    pub seed: u64,
    /// The first this many arrivals (with all their turns) are warmup.
    pub warmup: usize,
    /// Where the schedule stops.
    pub limit: Limit,
}

impl ScheduleConfig {
    /// `arrival` with seed 0, no warmup, no limit.
    pub fn new(arrival: Arrival) -> Self {
        ScheduleConfig { arrival, seed: 0, warmup: 0, limit: Limit::default() }
    }

    /// The same schedule drawn from `seed`.
    pub fn seed(self, seed: u64) -> Self {
        ScheduleConfig { seed, ..self }
    }

    /// The same schedule with its first `warmup` arrivals marked as warmup.
    pub fn warmup(self, warmup: usize) -> Self {
        ScheduleConfig { warmup, ..self }
    }

    /// The same schedule stopping at `limit`.
    pub fn limit(self, limit: Limit) -> Self {
        ScheduleConfig { limit, ..self }
    }
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self::new(Arrival::AllAtOnce)
    }
}

/// Where a schedule stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Limit {
    /// Keep at most this many requests (warmup requests included).
    pub max_requests: Option<usize>,
    /// Drop requests scheduled later than this after the start.
    pub max_duration: Option<Duration>,
}

/// What [`schedule`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleInfo {
    /// Requests kept.
    pub requests: usize,
    /// Arrivals kept (conversations, for multi-turn workloads; equal to `requests` otherwise).
    pub arrivals: usize,
    /// Requests marked warmup.
    pub warmup: usize,
    /// Requests dropped by the limit.
    pub dropped: usize,
    /// Scheduled time of the last kept request, ns (0 if none).
    pub last_ns: u64,
}

/// Inter-arrival sampler.
enum Gaps {
    Zero,
    Constant(f64),
    Exp(Exp<f64>),
    Gamma(Gamma<f64>),
}

/// Arrival times, ns after the start, drawn lazily: the first at 0, the next ones cumulative
/// sums of inter-arrival times (exact multiples of `1 / rate` for [`Arrival::Constant`];
/// exponential or gamma draws from a ChaCha8 stream seeded with `seed` otherwise). An endless
/// iterator: [`schedule`] uses it for a list of requests, and a generator of requests can zip
/// with it to replay millions of requests without materialising them (see
/// [`drive_iter`](crate::replay::drive_iter)).
///
/// ```
/// use benchkit::replay::workload::{Arrival, ArrivalTimes};
/// let t: Vec<u64> = ArrivalTimes::new(&Arrival::Constant { rate: 4.0 }, 0)?.take(3).collect();
/// assert_eq!(t, [0, 250_000_000, 500_000_000]);
/// # Ok::<(), benchkit::replay::workload::WorkloadError>(())
/// ```
pub struct ArrivalTimes {
    gaps: Gaps,
    rng: ChaCha8Rng,
    n: u64,
    elapsed_s: f64,
}

impl std::fmt::Debug for ArrivalTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrivalTimes").field("n", &self.n).field("elapsed_s", &self.elapsed_s).finish_non_exhaustive()
    }
}

impl ArrivalTimes {
    /// The arrival times of `arrival`, seeded with `seed`.
    ///
    /// # Errors
    ///
    /// [`WorkloadError::InvalidRate`] / [`WorkloadError::InvalidBurstiness`] for bad arrival
    /// parameters; [`WorkloadError::InvalidConfig`] for [`Arrival::Recorded`], whose times
    /// come from the requests (see [`schedule`]).
    pub fn new(arrival: &Arrival, seed: u64) -> Result<Self, WorkloadError> {
        arrival.validate()?;
        let gaps = match *arrival {
            Arrival::AllAtOnce => Gaps::Zero,
            Arrival::Recorded { .. } => {
                return Err(WorkloadError::InvalidConfig {
                    detail: "recorded arrivals take their times from the requests: use schedule()".into(),
                })
            }
            Arrival::Constant { rate } => Gaps::Constant(rate),
            Arrival::Poisson { rate } => Gaps::Exp(Exp::new(rate).map_err(|_| WorkloadError::InvalidRate { rate })?),
            Arrival::Gamma { rate, burstiness } => Gaps::Gamma(
                Gamma::new(burstiness, 1.0 / (rate * burstiness))
                    .map_err(|_| WorkloadError::InvalidBurstiness { burstiness })?,
            ),
        };
        Ok(Self { gaps, rng: ChaCha8Rng::seed_from_u64(seed), n: 0, elapsed_s: 0.0 })
    }
}

impl Iterator for ArrivalTimes {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.n > 0 {
            match &self.gaps {
                Gaps::Zero => {}
                Gaps::Constant(rate) => self.elapsed_s = self.n as f64 / rate,
                Gaps::Exp(d) => self.elapsed_s += d.sample(&mut self.rng),
                Gaps::Gamma(d) => self.elapsed_s += d.sample(&mut self.rng),
            }
        }
        self.n += 1;
        // Float-to-int casts saturate, so absurdly slow rates cannot wrap.
        Some((self.elapsed_s * 1e9).round() as u64)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// The mean rate of the arrivals (`turn == 0`) of scheduled requests: arrivals after the first
/// over the time from the first to the last, per second; `None` when they all share one time.
/// A replay of recorded times reports it as its request rate.
pub fn mean_rate(requests: &[Request]) -> Option<f64> {
    let times = requests.iter().filter(|r| r.turn == 0).map(|r| r.scheduled_ns);
    let (n, lo, hi) = times.fold((0usize, u64::MAX, 0u64), |(n, lo, hi), t| (n + 1, lo.min(t), hi.max(t)));
    (n > 1 && hi > lo).then(|| (n - 1) as f64 / ((hi - lo) as f64 / 1e9))
}

/// Computes every request's `scheduled_ns` up front, marks warmup requests, applies the limit
/// and renumbers `id` to the position in the schedule.
///
/// The times are those of [`ArrivalTimes`] with `seed`, one per arrival, so the offered rate
/// never drifts with the driver's timing and the same seed gives the same schedule.
///
/// **Arrivals and turns**: a request with `turn == 0` (or the first request seen of a
/// conversation) is a new arrival. A later turn of an already scheduled conversation (same
/// `conversation_id`, `turn > 0`) draws no arrival: it gets its conversation's scheduled time
/// as a time base and its warmup flag, and the driver releases it when the previous turn has
/// completed (never before its `scheduled_ns`). Requests should be in conversation order
/// (as [`sample_sharegpt`](super::sample_sharegpt) produces them).
///
/// **Recorded times** ([`Arrival::Recorded`]): each arrival keeps the `scheduled_ns` its
/// workload gave it (a trace's timestamps, sorted), multiplied by `time_scale`; the seed is
/// not used. Scheduling such requests twice scales their times twice.
///
/// **Warmup**: the first `warmup` arrivals (with all their turns) get `warmup = true`, the
/// others `false`.
///
/// **Limit**: applied after the times are computed, over the whole schedule (warmup
/// included): requests scheduled after `max_duration` are dropped, then the list is cut to
/// `max_requests`. Times of the kept requests do not depend on the limit.
///
/// # Errors
///
/// [`WorkloadError::InvalidRate`] / [`WorkloadError::InvalidBurstiness`] /
/// [`WorkloadError::InvalidTimeScale`] for bad arrival parameters (the requests are left
/// untouched).
pub fn schedule(requests: &mut Vec<Request>, config: &ScheduleConfig) -> Result<ScheduleInfo, WorkloadError> {
    let ScheduleConfig { ref arrival, seed, warmup, limit } = *config;
    // Drawn times, or (`None`) the requests' own times scaled.
    let (mut drawn, scale) = match *arrival {
        Arrival::Recorded { time_scale } => {
            arrival.validate()?;
            (None, time_scale)
        }
        _ => (Some(ArrivalTimes::new(arrival, seed)?), 1.0),
    };
    let mut arrivals = 0usize;
    let mut conversations: HashMap<String, (u64, bool)> = HashMap::new();
    let mut is_arrival = Vec::with_capacity(requests.len());
    for r in requests.iter_mut() {
        if r.turn > 0 {
            if let Some(&(t, w)) = conversations.get(&r.conversation_id) {
                r.scheduled_ns = t;
                r.warmup = w;
                is_arrival.push(false);
                continue;
            }
        }
        is_arrival.push(true);
        r.scheduled_ns = match drawn.as_mut() {
            Some(times) => times.next().unwrap_or(u64::MAX),
            // Float-to-int casts saturate.
            None => (r.scheduled_ns as f64 * scale).round() as u64,
        };
        r.warmup = arrivals < warmup;
        arrivals += 1;
        conversations.insert(r.conversation_id.clone(), (r.scheduled_ns, r.warmup));
    }
    let before = requests.len();
    let max_ns = limit.max_duration.map_or(u64::MAX, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let max_requests = limit.max_requests.unwrap_or(usize::MAX);
    let (mut index, mut kept, mut kept_arrivals) = (0usize, 0usize, 0usize);
    requests.retain(|r| {
        let is_arrival = is_arrival[index];
        index += 1;
        let keep = r.scheduled_ns <= max_ns && kept < max_requests;
        if keep {
            kept += 1;
            kept_arrivals += usize::from(is_arrival);
        }
        keep
    });
    for (i, r) in requests.iter_mut().enumerate() {
        r.id = i as u64;
    }
    Ok(ScheduleInfo {
        requests: requests.len(),
        arrivals: kept_arrivals,
        warmup: requests.iter().filter(|r| r.warmup).count(),
        dropped: before - requests.len(),
        last_ns: requests.iter().map(|r| r.scheduled_ns).max().unwrap_or(0),
    })
}
