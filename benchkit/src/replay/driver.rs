//! Drives a schedule against a target: sends each request at its precomputed arrival time,
//! bounds concurrency, keeps a conversation's turns in order, and streams every finished record
//! to the caller as it completes.
//!
//! Timing: the dispatcher is a task that waits for each arrival on a `timerfd` registered with
//! the runtime's reactor (Linux), so requests leave within tens of microseconds of their
//! schedule instead of tokio's 1 ms timer granularity, no thread hand-off is paid per request,
//! and the offered rate never drifts with the time a request takes to build or send. By default
//! nothing spins between arrivals (a spinning waiter takes a core from the client's own work and
//! from a server on the same machine); [`DriveConfig::spin`] opts into busy-waiting the last
//! stretch before each arrival, for a client with a core of its own.
//!
//! Schedule lag (`sent - scheduled`) is split into three parts that add up to it, for every
//! measured (non-warmup) first turn ([`LagBreakdown`]): the dispatcher handing the request over
//! late (a late timer wake-up, a busy dispatcher, or a `max_concurrency` wait), the runtime
//! starting the request's task late (its workers busy with other tasks), and the target's own
//! wait before sending (encoding, an HTTP connection slot). Three histogram updates and two
//! clock reads per request.
//!
//! Memory does not grow with the length of the run: [`drive_iter`] pulls requests lazily from an
//! iterator, so only the requests in flight exist at any time.

use super::lag::{lag_histogram, record_ns, LagBreakdown, LagPart};
use super::types::{Request, RequestRecord, Target};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::iter::Peekable;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// How to drive the schedule.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DriveConfig {
    /// At most this many requests in flight (`None` = unbounded).
    pub max_concurrency: Option<usize>,
    /// Busy-wait this long before each arrival instead of sleeping to it (zero, the default:
    /// always sleep). The dispatcher sleeps on its timer until `spin` before the arrival, then
    /// keeps its runtime thread awake — yielding to the other tasks and polling the sockets
    /// without blocking — until the arrival is due. That takes the timer's wake-up latency
    /// (and, in a VM, the host's delay in rescheduling a halted vCPU) out of the schedule, and
    /// spares the kernel a sleep and a wake-up per request; it costs a core whenever arrivals
    /// come closer together than `spin`. For load generation on a machine of its own, or at
    /// rates where the client would otherwise wake for every request (tens of thousands per
    /// second); not when the server under test shares the client's cores.
    #[serde(default)]
    pub spin: Duration,
}

/// What the driver observed besides the records.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DriveStats {
    /// From the start (time 0 of the schedule) to the last completion.
    pub duration: Duration,
    /// Requests sent.
    pub sent: u64,
    /// Later turns not sent because an earlier turn of their conversation failed.
    pub skipped_turns: u64,
    /// Where the schedule lag of the measured first turns came from.
    #[serde(default)]
    pub lag: LagBreakdown,
}

/// Sends `requests` to `target` on their schedule and calls `on_record` for each finished
/// request (in completion order) from the calling task. Must run inside a tokio runtime
/// (either flavour) with time enabled; with I/O enabled too (`enable_all`), arrivals are
/// precise to microseconds, otherwise to tokio's millisecond timer.
///
/// Requests may come in any order: they are grouped into conversations (`conversation_id`)
/// and dispatched by their first turn's `scheduled_ns`. Multi-turn conversations: the first
/// turn is sent at its scheduled time; turn k+1 is released when turn k completes (its
/// `scheduled_ns` becomes that completion time), and after a failed turn the rest of the
/// conversation is not sent (counted in [`DriveStats::skipped_turns`]).
///
/// This holds the whole list; for very long runs use [`drive_iter`], which holds only the
/// requests in flight.
pub async fn drive(
    target: Arc<dyn Target>,
    requests: Vec<Request>,
    options: &DriveConfig,
    on_record: impl FnMut(RequestRecord),
) -> DriveStats {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut conversations: Vec<Vec<Request>> = Vec::new();
    for r in requests {
        match index.get(&r.conversation_id) {
            Some(&i) => conversations[i].push(r),
            None => {
                index.insert(r.conversation_id.clone(), conversations.len());
                conversations.push(vec![r]);
            }
        }
    }
    drop(index);
    for c in &mut conversations {
        c.sort_by_key(|r| r.turn);
    }
    conversations.sort_by_key(|c| (c[0].scheduled_ns, c[0].id));
    run(target, conversations.into_iter(), options, on_record).await
}

/// Like [`drive`], but pulls requests lazily from `requests` (on the dispatcher thread), so a
/// run of millions of requests needs memory only for those in flight.
///
/// The iterator must yield first turns in order of `scheduled_ns` (a request due before the
/// previous one is sent right away), with a conversation's later turns (`turn > 0`, same
/// `conversation_id`) directly after its first turn, in turn order — the order
/// [`schedule`](super::workload::schedule) keeps. A later turn that does not follow its
/// conversation is sent as a conversation of its own.
///
/// ```no_run
/// # async fn f(target: std::sync::Arc<dyn benchkit::replay::Target>) -> Result<(), Box<dyn std::error::Error>> {
/// use benchkit::replay::{drive_iter, DriveConfig, Request};
/// use benchkit::replay::workload::{Arrival, ArrivalTimes};
/// let times = ArrivalTimes::new(&Arrival::Poisson { rate: 5000.0 }, 42)?;
/// let requests = times.take(1_000_000).enumerate().map(|(i, t)| Request::text(i as u64, "Hello", 1, 8).at(t));
/// let mut n = 0;
/// drive_iter(target, requests, &DriveConfig::default(), |_rec| n += 1).await;
/// # Ok(()) }
/// ```
pub async fn drive_iter<I>(
    target: Arc<dyn Target>,
    requests: I,
    options: &DriveConfig,
    on_record: impl FnMut(RequestRecord),
) -> DriveStats
where
    I: IntoIterator<Item = Request>,
    I::IntoIter: Send + 'static,
{
    run(target, Contiguous(requests.into_iter().peekable()), options, on_record).await
}

/// Groups a request with the later turns of its conversation that directly follow it.
struct Contiguous<I: Iterator<Item = Request>>(Peekable<I>);

impl<I: Iterator<Item = Request>> Iterator for Contiguous<I> {
    type Item = Vec<Request>;

    fn next(&mut self) -> Option<Vec<Request>> {
        let first = self.0.next()?;
        let mut turns = vec![first];
        while let Some(next) = self.0.next_if(|r| r.turn > 0 && r.conversation_id == turns[0].conversation_id) {
            turns.push(next);
        }
        Some(turns)
    }
}

/// Shared by every conversation task.
struct Shared {
    target: Arc<dyn Target>,
    semaphore: Option<Arc<Semaphore>>,
    sent: AtomicU64,
    skipped: AtomicU64,
    start: Instant,
    /// `task_start`, `target_wait`, `slot_wait` and `client` of [`LagBreakdown`] (the
    /// dispatcher keeps `dispatch`).
    parts: Mutex<[Histogram<u64>; 4]>,
}

async fn run<C>(
    target: Arc<dyn Target>,
    conversations: C,
    options: &DriveConfig,
    mut on_record: impl FnMut(RequestRecord),
) -> DriveStats
where
    C: Iterator<Item = Vec<Request>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<RequestRecord>();
    let start = Instant::now();
    let spin = options.spin;
    let shared = Arc::new(Shared {
        target,
        semaphore: options.max_concurrency.map(|n| Arc::new(Semaphore::new(n.max(1)))),
        sent: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        start,
        parts: Mutex::new([lag_histogram(), lag_histogram(), lag_histogram(), lag_histogram()]),
    });
    let mut dispatcher = AbortOnDrop(Some({
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut timer = PreciseTimer::new(spin);
            let mut dispatch = lag_histogram();
            // The end of the dispatcher's latest wait for a `max_concurrency` slot.
            let mut blocked_until = 0u64;
            for turns in conversations {
                let Some(first) = turns.first() else { continue };
                let scheduled_ns = first.scheduled_ns;
                timer.sleep_until(start + Duration::from_nanos(scheduled_ns)).await;
                let woke_ns = ns_since(start);
                // Waiting for a free slot holds back the following arrivals too (as a client
                // with a bounded pool does); their lag shows it.
                let (permit, waited) = match &shared.semaphore {
                    Some(s) => match s.clone().try_acquire_owned() {
                        Ok(p) => (Some(p), false),
                        Err(_) => (
                            Some(s.clone().acquire_owned().await.expect("the driver never closes its semaphore")),
                            true,
                        ),
                    },
                    None => (None, false),
                };
                let handed_ns = ns_since(start);
                let held = blocked_until.min(woke_ns).saturating_sub(scheduled_ns);
                let slot_ns = held + if waited { handed_ns.saturating_sub(woke_ns) } else { 0 };
                if waited {
                    blocked_until = handed_ns;
                }
                if !turns[0].warmup {
                    record_ns(&mut dispatch, handed_ns.saturating_sub(scheduled_ns));
                }
                let slot_ns = shared.semaphore.is_some().then_some(slot_ns);
                tokio::spawn(conversation(shared.clone(), turns, permit, (handed_ns, slot_ns), tx.clone()));
            }
            dispatch
        })
    }));
    // The channel closes when the dispatcher and every conversation task are done.
    while let Some(rec) = rx.recv().await {
        on_record(rec);
    }
    let dispatch = match dispatcher.0.take().expect("awaited once").await {
        Ok(h) => LagPart::of(&h),
        // A panic in the caller's request iterator: hand it back to the caller.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => LagPart::default(),
    };
    let duration = start.elapsed();
    let parts = shared.parts.lock().unwrap_or_else(|p| p.into_inner());
    DriveStats {
        duration,
        sent: shared.sent.load(Ordering::Relaxed),
        skipped_turns: shared.skipped.load(Ordering::Relaxed),
        lag: LagBreakdown {
            dispatch,
            task_start: LagPart::of(&parts[0]),
            target_wait: LagPart::of(&parts[1]),
            slot_wait: LagPart::of(&parts[2]),
            client: LagPart::of(&parts[3]),
        },
    }
}

fn ns_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Stops the dispatcher when `drive` is dropped before it finishes (requests already sent run
/// to completion; no new ones leave).
struct AbortOnDrop(Option<tokio::task::JoinHandle<Histogram<u64>>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// Sends a conversation's turns one after the other.
async fn conversation(
    shared: Arc<Shared>,
    turns: Vec<Request>,
    mut permit: Option<OwnedSemaphorePermit>,
    (handed_ns, slot_ns): (u64, Option<u64>),
    tx: mpsc::UnboundedSender<RequestRecord>,
) {
    let started_ns = ns_since(shared.start);
    let n = turns.len();
    let mut previous_end: Option<u64> = None;
    for (i, mut req) in turns.into_iter().enumerate() {
        if let Some(end) = previous_end {
            req.scheduled_ns = end;
            if permit.is_none() {
                if let Some(s) = &shared.semaphore {
                    permit = Some(s.clone().acquire_owned().await.expect("the driver never closes its semaphore"));
                }
            }
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let rec = shared.target.send(req, shared.start).await;
        drop(permit.take());
        if i == 0 && !rec.warmup {
            let lag = rec.sent_ns.saturating_sub(rec.scheduled_ns);
            let mut parts = shared.parts.lock().unwrap_or_else(|p| p.into_inner());
            record_ns(&mut parts[0], started_ns.saturating_sub(handed_ns));
            record_ns(&mut parts[1], rec.sent_ns.saturating_sub(started_ns));
            if let Some(slot) = slot_ns {
                record_ns(&mut parts[2], slot);
            }
            record_ns(&mut parts[3], lag.saturating_sub(slot_ns.unwrap_or(0)));
        }
        let (ok, end) = (rec.ok(), rec.end_ns);
        let _ = tx.send(rec);
        if !ok {
            shared.skipped.fetch_add((n - i - 1) as u64, Ordering::Relaxed);
            return;
        }
        previous_end = Some(end);
    }
}

/// Waits for arrival times with nanosecond resolution inside the runtime: a `timerfd`
/// registered with tokio's reactor (Linux), so the worker that runs the dispatcher sleeps in
/// `epoll_wait` and wakes when the request is due — no spinning, no extra thread, and no hand-off
/// between threads. tokio's own timer rounds up to whole milliseconds; it is the fallback where
/// `timerfd` is not available.
struct PreciseTimer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    /// Busy-wait (yielding) for the last `spin` before a deadline.
    spin: Duration,
}

impl PreciseTimer {
    fn new(spin: Duration) -> Self {
        #[cfg(target_os = "linux")]
        {
            let fd = timerfd::create().and_then(timerfd::register);
            if let Err(e) = &fd {
                tracing::warn!("timerfd unavailable ({e}); arrivals use tokio's millisecond timer");
            }
            Self { fd: fd.ok(), spin }
        }
        #[cfg(not(target_os = "linux"))]
        Self { spin }
    }

    async fn sleep_until(&mut self, deadline: Instant) {
        if !self.spin.is_zero() {
            if let Some(wake) = deadline.checked_sub(self.spin) {
                self.sleep_to(wake).await;
            }
            // Yielding lets every other task of this runtime run, and a runtime with nothing
            // else to do polls its I/O driver without blocking before coming back here.
            while Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
            return;
        }
        self.sleep_to(deadline).await;
    }

    async fn sleep_to(&mut self, deadline: Instant) {
        let now = Instant::now();
        if deadline <= now {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            match timerfd::wait(fd, deadline - now).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!("timerfd failed ({e}); arrivals use tokio's millisecond timer");
                    self.fd = None;
                }
            }
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

#[cfg(target_os = "linux")]
mod timerfd {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;
    use tokio::io::unix::AsyncFd;

    /// A non-blocking monotonic timerfd.
    pub(super) fn create() -> io::Result<OwnedFd> {
        // SAFETY: timerfd_create takes no pointers; a negative result is an error.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Registers the timer with the current runtime's reactor. A runtime built without I/O
    /// (`enable_io`) makes tokio panic here; that is caught and reported as an error, so the
    /// caller falls back to tokio's timer.
    pub(super) fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
        let registered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: an OwnedFd stays open and returns the same descriptor from as_raw_fd for
            // as long as it lives, and the AsyncFd owns it from here on.
            unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        }));
        match registered {
            Ok(Ok(fd)) => Ok(fd),
            Ok(Err(e)) => Err(io::Error::other(e.to_string())),
            Err(_) => Err(io::Error::other("the tokio runtime has no I/O driver (enable_io)")),
        }
    }

    /// Arms the timer `after` from now (one shot) and waits for it to expire.
    pub(super) async fn wait(fd: &AsyncFd<OwnedFd>, after: Duration) -> io::Result<()> {
        let value = libc::timespec {
            tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(after.subsec_nanos().max(1) as i32),
        };
        let spec = libc::itimerspec { it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 }, it_value: value };
        // SAFETY: the descriptor is open (owned by `fd`), `spec` is a valid itimerspec that
        // outlives the call, and a null old-value pointer is allowed.
        let rc = unsafe { libc::timerfd_settime(fd.get_ref().as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = fd.readable().await?;
            // A stale readiness from the previous expiry reads EAGAIN: try_io clears it and
            // the loop waits for the new one.
            match guard.try_io(|inner| {
                let mut expirations = 0u64;
                // SAFETY: reads 8 bytes into a live u64 from an open descriptor.
                let n = unsafe { libc::read(inner.get_ref().as_raw_fd(), (&mut expirations as *mut u64).cast(), 8) };
                if n == 8 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            }) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: u64, conv: &str, turn: u32) -> Request {
        Request::chat(id, Vec::new(), 1, 1).in_conversation(conv, turn)
    }

    /// Completes every request 20 ms after it was sent.
    struct Slow;

    impl Target for Slow {
        fn describe(&self) -> String {
            "slow".into()
        }

        fn send(&self, request: Request, start: Instant) -> crate::replay::RecordFuture {
            Box::pin(async move {
                let sent_ns = ns_since(start);
                tokio::time::sleep(Duration::from_millis(20)).await;
                RequestRecord {
                    id: request.id,
                    conversation_id: request.conversation_id,
                    turn: request.turn,
                    warmup: false,
                    scheduled_ns: request.scheduled_ns,
                    sent_ns,
                    first_token_ns: Some(ns_since(start)),
                    itl_ns: Vec::new(),
                    end_ns: ns_since(start),
                    input_tokens: 1,
                    output_tokens: 1,
                    output_tokens_source: crate::replay::TokenCountSource::Engine,
                    failure: None,
                    text: None,
                }
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waits_behind_max_concurrency_are_told_apart_from_the_clients_lag() {
        // Six requests due at once, one slot: the k-th waits ~20k ms for its slot.
        let requests: Vec<Request> = (0..6).map(|i| Request::text(i, "x", 1, 1)).collect();
        let options = DriveConfig { max_concurrency: Some(1), ..DriveConfig::default() };
        let stats = drive(Arc::new(Slow), requests, &options, |_| {}).await;
        let lag = stats.lag;
        assert_eq!((lag.slot_wait.count, lag.client.count), (6, 6), "{lag:?}");
        assert!(lag.slot_wait.max_ms >= 95.0, "the last request waited five 20 ms turns: {lag:?}");
        assert!(lag.client.max_ms < lag.slot_wait.max_ms / 4.0, "{lag:?}");
        let free = drive(Arc::new(Slow), vec![Request::text(0, "x", 1, 1)], &DriveConfig::default(), |_| {}).await;
        assert_eq!((free.lag.slot_wait.count, free.lag.client.count), (0, 1), "no bound, no slot waits");
    }

    #[test]
    fn contiguous_groups_follow_ups_only() {
        let list = vec![req(0, "a", 0), req(1, "a", 1), req(2, "b", 0), req(3, "a", 2), req(4, "b", 0)];
        let groups: Vec<Vec<u64>> =
            Contiguous(list.into_iter().peekable()).map(|g| g.iter().map(|r| r.id).collect()).collect();
        // "a" turn 2 does not follow its conversation: it stands alone; a second turn 0 of
        // "b" starts a new group.
        assert_eq!(groups, vec![vec![0, 1], vec![2], vec![3], vec![4]]);
    }

    /// Waits `delays_us` in turn on `timer`; asserts it never wakes early.
    async fn wait_never_early(timer: &mut PreciseTimer, delays_us: &[u64]) {
        for &us in delays_us {
            let deadline = Instant::now() + Duration::from_micros(us);
            timer.sleep_until(deadline).await;
            let now = Instant::now();
            assert!(now >= deadline, "woke {:?} early", deadline - now);
        }
    }

    #[tokio::test]
    async fn precise_timer_uses_timerfd_and_is_never_early() {
        let mut timer = PreciseTimer::new(Duration::ZERO);
        // On Linux the waits go through the timerfd, not tokio's millisecond timer. How late
        // it wakes is a figure for `cargo bench --bench dispatch_lag` (a lateness bound here
        // failed on a loaded CI machine).
        #[cfg(target_os = "linux")]
        assert!(timer.fd.is_some());
        wait_never_early(&mut timer, &[0, 30, 200, 1500, 50, 50, 50]).await;
    }

    #[tokio::test]
    async fn spinning_timer_is_never_early() {
        // Sleeps up to 300 µs before each deadline, then yields until it is due.
        let mut timer = PreciseTimer::new(Duration::from_micros(300));
        // How tight it is against the sleeping timer is measured side by side by
        // `cargo bench --bench dispatch_lag`; here: never early, waits shorter and longer than
        // the spin alike.
        wait_never_early(&mut timer, &[0, 30, 200, 1500, 50, 50, 50, 400, 400, 400, 2000]).await;
    }
}
