//! Drives a schedule against a target: sends each request at its precomputed arrival time
//! (sub-millisecond precision), bounds concurrency, keeps a conversation's turns in order, and
//! streams every finished record to the caller as it completes.

use super::types::{Request, RequestRecord, Target};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to drive the schedule.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DriveOptions {
    /// At most this many requests in flight (`None` = unbounded).
    pub max_concurrency: Option<usize>,
}

/// What the driver observed besides the records.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DriveStats {
    /// From the first scheduled arrival to the last completion.
    pub duration: Duration,
    /// Requests sent.
    pub sent: u64,
}

/// Waits until `deadline`: sleeps while far away, then yields until it passes, so requests
/// leave within microseconds of their schedule instead of tokio's 1 ms timer granularity.
async fn wait_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now + Duration::from_millis(2) {
        tokio::time::sleep_until((deadline - Duration::from_millis(1)).into()).await;
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// Sends `requests` to `target` on their schedule and calls `on_record` for each finished
/// request (in completion order) from the calling task. Must run inside a tokio runtime.
///
/// Multi-turn conversations: turn 0 is sent at its scheduled time; turn k+1 is released when
/// turn k completes (its `scheduled_ns` becomes that completion time).
pub async fn drive(
    target: Arc<dyn Target>,
    requests: Vec<Request>,
    options: &DriveOptions,
    mut on_record: impl FnMut(RequestRecord),
) -> DriveStats {
    let mut follow_ups: BTreeMap<String, VecDeque<Request>> = BTreeMap::new();
    let mut firsts = Vec::new();
    for r in requests {
        if r.turn == 0 {
            firsts.push(r);
        } else {
            follow_ups.entry(r.conversation_id.clone()).or_default().push_back(r);
        }
    }
    for turns in follow_ups.values_mut() {
        turns.make_contiguous().sort_by_key(|r| r.turn);
    }
    firsts.sort_by_key(|r| (r.scheduled_ns, r.id));
    let follow_ups = Arc::new(std::sync::Mutex::new(follow_ups));
    let semaphore = options.max_concurrency.map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RequestRecord>();
    let start = Instant::now();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));

    let dispatcher = {
        let target = target.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            for r in firsts {
                wait_until(start + Duration::from_nanos(r.scheduled_ns)).await;
                let permit = match &semaphore {
                    Some(s) => Some(s.clone().acquire_owned().await.expect("semaphore never closed")),
                    None => None,
                };
                let (target, tx, follow_ups, sent, semaphore) =
                    (target.clone(), tx.clone(), follow_ups.clone(), sent.clone(), semaphore.clone());
                tokio::spawn(async move {
                    let mut next = Some(r);
                    let mut permit = permit;
                    while let Some(req) = next.take() {
                        if permit.is_none() {
                            if let Some(s) = &semaphore {
                                permit = Some(s.clone().acquire_owned().await.expect("semaphore never closed"));
                            }
                        }
                        sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let conv = req.conversation_id.clone();
                        let rec = target.send(req, start).await;
                        drop(permit.take());
                        let ok = rec.ok();
                        let done_ns = rec.end_ns;
                        let _ = tx.send(rec);
                        if ok {
                            let mut f = follow_ups.lock().unwrap_or_else(|e| e.into_inner());
                            if let Some(mut n) = f.get_mut(&conv).and_then(VecDeque::pop_front) {
                                n.scheduled_ns = done_ns;
                                next = Some(n);
                            }
                        }
                    }
                });
            }
        })
    };
    // Records arrive as requests finish; the channel closes when every sender is gone.
    while let Some(rec) = rx.recv().await {
        on_record(rec);
    }
    let _ = dispatcher.await;
    DriveStats { duration: start.elapsed(), sent: sent.load(std::sync::atomic::Ordering::Relaxed) }
}
