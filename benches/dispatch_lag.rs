//! Schedule lag of the replay dispatcher: how late requests leave against their arrival
//! times, sleeping on the timerfd (the default) and with `DriveConfig::spin`.
//!
//! The two modes run in interleaved rounds in one process, so load on a shared machine falls on
//! both alike; the figure to read is the paired ratio of their medians. `cargo bench --bench
//! dispatch_lag` measures; under `cargo test` (no `--bench`) one short round checks that it runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use benchkit::replay::{drive_iter, DriveConfig, RecordFuture, Request, RequestRecord, Target, TokenCountSource};

/// Completes every request the moment it is sent: the lag measured is the dispatcher's alone.
struct Instant0;

impl Target for Instant0 {
    fn describe(&self) -> String {
        "instant".into()
    }

    fn send(&self, r: Request, start: Instant) -> RecordFuture {
        let now = start.elapsed().as_nanos() as u64;
        Box::pin(async move {
            RequestRecord {
                id: r.id,
                conversation_id: r.conversation_id,
                turn: r.turn,
                warmup: r.warmup,
                scheduled_ns: r.scheduled_ns,
                sent_ns: now,
                first_token_ns: Some(now),
                itl_ns: Vec::new(),
                end_ns: now,
                input_tokens: r.prompt_len,
                output_tokens: 1,
                output_tokens_source: TokenCountSource::Engine,
                failure: None,
                text: None,
            }
        })
    }
}

fn requests(n: u64, gap: Duration) -> impl Iterator<Item = Request> + Send + 'static {
    let gap = gap.as_nanos() as u64;
    (0..n).map(move |i| Request::text(i, "x", 1, 1).at((i + 1) * gap))
}

async fn lags(spin: Duration, n: u64) -> Vec<u64> {
    let opts = DriveConfig { spin, ..Default::default() };
    let mut out = Vec::new();
    drive_iter(Arc::new(Instant0), requests(n, Duration::from_micros(700)), &opts, |r| {
        assert!(r.sent_ns >= r.scheduled_ns, "sent early: {r:?}");
        out.push(r.sent_ns - r.scheduled_ns);
    })
    .await;
    out
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rounds, per_round) = if measuring { (20, 200) } else { (1, 20) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let spin = Duration::from_micros(300);
    let (mut sleep_all, mut spin_all, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut a = rt.block_on(lags(Duration::ZERO, per_round));
        let mut b = rt.block_on(lags(spin, per_round));
        a.sort_unstable();
        b.sort_unstable();
        ratios.push(quantile(&a, 0.5) / quantile(&b, 0.5).max(0.001));
        sleep_all.extend(a);
        spin_all.extend(b);
    }
    sleep_all.sort_unstable();
    spin_all.sort_unstable();
    ratios.sort_by(f64::total_cmp);
    println!("schedule lag, µs ({rounds} interleaved rounds x {per_round} requests, 700 µs apart)");
    println!("{:<12} {:>9} {:>9} {:>9}", "mode", "median", "p90", "p99");
    for (name, v) in [("sleep", &sleep_all), ("spin 300µs", &spin_all)] {
        println!("{name:<12} {:>9.1} {:>9.1} {:>9.1}", quantile(v, 0.5), quantile(v, 0.9), quantile(v, 0.99));
    }
    println!("median of per-round ratios sleep/spin: {:.2}", ratios[ratios.len() / 2]);
}
