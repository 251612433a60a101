//! The sampling thread, phase windows and the JSONL series.

use super::{Probe, Sample, Telemetry, TelemetryConfig};
use crate::supervise::Phase;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One line of the series file: a sample or a phase mark, on the same clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SeriesLine {
    /// A sample of trial `index` (`None`: between trials).
    Sample {
        /// The process sampled.
        pid: u32,
        /// The trial.
        index: Option<usize>,
        /// The readings.
        #[serde(flatten)]
        sample: Box<Sample>,
    },
    /// Trial `index` entered `phase`.
    Mark {
        /// The process.
        pid: u32,
        /// The trial.
        index: usize,
        /// The phase.
        #[serde(flatten)]
        phase: Phase,
        /// Seconds since the recorder started.
        t_s: f64,
        /// Wall-clock time, ns since the Unix epoch.
        unix_ns: u64,
    },
}

struct Open {
    index: usize,
    samples: Vec<Sample>,
    /// Where the summary starts: the first timed repetition, else the warmup, else the start.
    warmup: Option<usize>,
    repetition: Option<usize>,
}

struct State {
    probes: Vec<Box<dyn Probe>>,
    reasons: BTreeMap<&'static str, String>,
    pid: u32,
    interval_ms: u64,
    t0: Instant,
    open: Option<Open>,
    done: HashMap<usize, Telemetry>,
    series: Option<std::io::BufWriter<std::fs::File>>,
}

impl State {
    fn sample(&mut self) -> Sample {
        let mut s = Sample {
            t_s: self.t0.elapsed().as_secs_f64(),
            unix_ns: crate::supervise::unix_ns_now(),
            ..Sample::default()
        };
        for p in &mut self.probes {
            p.sample(&mut s);
        }
        let line = SeriesLine::Sample {
            pid: self.pid,
            index: self.open.as_ref().map(|o| o.index),
            sample: Box::new(s.clone()),
        };
        self.write(&line);
        s
    }

    fn write(&mut self, line: &SeriesLine) {
        let Some(w) = self.series.as_mut() else { return };
        let ok = serde_json::to_writer(&mut *w, line).is_ok() && w.write_all(b"\n").is_ok() && w.flush().is_ok();
        if !ok {
            // A full disk costs the series, not the run.
            tracing::warn!("cannot write the telemetry series; it stops here");
            self.series = None;
        }
    }

    fn close(&mut self) {
        let Some(open) = self.open.take() else { return };
        let (from, start) = match (open.repetition, open.warmup) {
            (Some(i), _) => ("repetition", i),
            (None, Some(i)) => ("warmup", i),
            (None, None) => ("start", 0),
        };
        let t = Telemetry::summarize(&open.samples[start..], from, self.pid, self.interval_ms, &self.reasons);
        self.done.insert(open.index, t);
    }
}

/// Samples one process (and the machine) on a thread of its own; each trial's window opens at
/// its `start` phase and closes at `finished` or when its output is taken.
pub struct Recorder {
    state: Option<Arc<Mutex<State>>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Starts the probes of `config` on process `pid`, and the sampling thread. A probe that
    /// cannot start leaves its reason in every summary; nothing here fails.
    pub fn start(pid: u32, config: &TelemetryConfig) -> Recorder {
        if !config.enabled {
            return Recorder { state: None, stop: None, thread: None };
        }
        let mut reasons = BTreeMap::new();
        let mut probes = Vec::new();
        for mut p in config.probes(pid) {
            match p.start() {
                Ok(()) => {
                    reasons.extend(p.unavailable());
                    probes.push(p);
                }
                Err(r) => {
                    reasons.insert(p.name(), r);
                }
            }
        }
        let series = config.series.as_ref().and_then(|path| {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(path);
            f.map_err(|e| tracing::warn!(path = %path.display(), error = %e, "cannot open the telemetry series file"))
                .ok()
                .map(std::io::BufWriter::new)
        });
        let interval_ms = config.interval.as_millis() as u64;
        let state = Arc::new(Mutex::new(State {
            probes,
            reasons,
            pid,
            interval_ms,
            t0: Instant::now(),
            open: None,
            done: HashMap::new(),
            series,
        }));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(&state);
        let interval = config.interval.max(Duration::from_millis(1));
        let thread = std::thread::Builder::new()
            .name("benchkit-telemetry".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
                // Between trials only the series wants samples.
                if st.open.is_some() || st.series.is_some() {
                    let s = st.sample();
                    if let Some(o) = st.open.as_mut() {
                        o.samples.push(s);
                    }
                }
            })
            .ok();
        Recorder { state: Some(state), stop: Some(stop), thread }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        let state = self.state.as_ref()?;
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        Some(f(&mut st))
    }

    /// Trial `index` entered `phase` (`unix_ns`: when, by the worker's clock): a boundary
    /// sample and a mark in the series; `start` opens the trial's window, `finished` closes it.
    pub fn phase(&self, index: usize, phase: Phase, unix_ns: u64) {
        self.with(|st| {
            if phase == Phase::Start {
                st.close();
                st.open = Some(Open { index, samples: Vec::new(), warmup: None, repetition: None });
            }
            let t_s = st.t0.elapsed().as_secs_f64();
            st.write(&SeriesLine::Mark { pid: st.pid, index, phase, t_s, unix_ns });
            let s = st.sample();
            if let Some(o) = st.open.as_mut().filter(|o| o.index == index) {
                o.samples.push(s);
                let at = o.samples.len() - 1;
                match phase {
                    Phase::Warmup if o.warmup.is_none() => o.warmup = Some(at),
                    Phase::Repetition { rep: 1, .. } => o.repetition = Some(at),
                    _ => {}
                }
            }
            if phase == Phase::Finished && st.open.as_ref().is_some_and(|o| o.index == index) {
                st.close();
            }
        });
    }

    /// Opens a window for `index` by hand (a replay against a server has no worker phases).
    pub fn begin(&self, index: usize) {
        self.phase(index, Phase::Start, crate::supervise::unix_ns_now());
    }

    /// The summary of trial `index`: closes its window if it is still open. Unavailable
    /// everywhere when telemetry is off or the trial never started.
    pub fn take(&self, index: usize) -> Telemetry {
        self.with(|st| {
            if st.open.as_ref().is_some_and(|o| o.index == index) {
                let s = st.sample();
                if let Some(o) = st.open.as_mut() {
                    o.samples.push(s);
                }
                st.close();
            }
            st.done.remove(&index).unwrap_or_else(|| Telemetry::unavailable("the trial was not sampled"))
        })
        .unwrap_or_else(|| Telemetry::unavailable("telemetry off"))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.with(|st| {
            for p in &mut st.probes {
                p.stop();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_phases_and_the_series_has_marks() {
        let dir = tempfile::tempdir().unwrap();
        let series = dir.path().join("series.jsonl");
        let cfg = TelemetryConfig {
            interval: Duration::from_millis(5),
            series: Some(series.clone()),
            gpu: false,
            ..TelemetryConfig::default()
        };
        let rec = Recorder::start(std::process::id(), &cfg);
        rec.phase(3, Phase::Start, 0);
        rec.phase(3, Phase::Warmup, 0);
        rec.phase(3, Phase::Repetition { rep: 1, of: 2 }, 0);
        // Burn some CPU in the window.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        rec.phase(3, Phase::Finished, 0);
        let tel = rec.take(3);
        let w = tel.window.as_ref().unwrap();
        assert_eq!(w.from, "repetition");
        assert!(w.duration_s >= 0.05 && w.samples >= 3, "{w:?}");
        let cpu = tel.cpu.value().expect("own process measured");
        assert!(cpu.user_s + cpu.system_s > 0.0 && cpu.utilization > 0.0, "{cpu:?}");
        assert!(tel.memory.value().unwrap().peak_rss_bytes > 0);
        assert!(tel.gpu.reason().is_some());
        assert!(rec.take(4).cpu.reason().unwrap().contains("not sampled"));
        drop(rec);
        let lines: Vec<SeriesLine> =
            std::fs::read_to_string(&series).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let marks = lines.iter().filter(|l| matches!(l, SeriesLine::Mark { .. })).count();
        assert_eq!(marks, 4);
        assert!(lines.iter().filter(|l| matches!(l, SeriesLine::Sample { .. })).count() >= 8);
        let off = Recorder::start(1, &TelemetryConfig::off());
        off.phase(0, Phase::Start, 0);
        assert_eq!(off.take(0).cpu.reason(), Some("telemetry off"));
    }
}
