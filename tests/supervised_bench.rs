//! Supervised sweeps: a worker killed, a llama.cpp abort and a trial past its timeout each
//! become a classified record, and the sweep goes on with a fresh worker.

use benchkit::bench::{Grid, Progress, RunConfig, Status, SupervisedSweep, Sweep, Test};
use benchkit::gguf::GgmlType;
use benchkit::quantize::Quant;
use benchkit::supervise::{Phase, TrialConfig, WorkerCommand};
use benchkit::synth::{self, Shape, SynthConfig, WeightType};
use benchkit::{Backend, FlashAttn};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn tiny_model() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("benchkit-supervised-{}", std::process::id()));
        let spec = SynthConfig { name: "tiny".into(), shape: Shape::tiny(), seed: 3, weight_type: WeightType::F16 };
        synth::cached_model_in(&Backend::init().unwrap(), &dir, &spec, Some(Quant::Q8_0)).unwrap()
    })
    .clone()
}

/// Test binaries cannot re-execute themselves as workers: the workspace's worker binary does.
fn opts() -> TrialConfig {
    TrialConfig::default().worker(WorkerCommand::program(env!("CARGO_BIN_EXE_benchkit-worker")))
}

fn settings(repetitions: u32) -> RunConfig {
    RunConfig { repetitions, ..RunConfig::default() }
}

#[test]
fn a_worker_killed_during_tg2048_is_a_crashed_record_and_the_sweep_goes_on() {
    let grid = Grid {
        n_prompt: vec![64],
        n_gen: vec![2048, 16],
        n_threads: vec![2],
        ..Grid::new(benchkit_suite::test_model())
    };
    let mut pids = Vec::new();
    let mut killed = None;
    let records: Vec<_> = SupervisedSweep::new(&grid, settings(1), opts())
        .unwrap()
        .on_progress(|p| match p {
            Progress::Worker { pid } => pids.push(*pid),
            Progress::Phase { index: 1, phase: Phase::Repetition { .. }, .. } if killed.is_none() => {
                let pid = *pids.last().unwrap();
                // SAFETY: sends SIGKILL to the worker this sweep started.
                assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
                killed = Some(pid);
            }
            _ => {}
        })
        .collect();
    let tests: Vec<(&str, Status)> = records.iter().map(|r| (r.test.as_str(), r.status)).collect();
    assert_eq!(tests, [("pp64", Status::Ok), ("tg2048", Status::Crashed), ("tg16", Status::Ok)], "{records:#?}");
    assert!(records[0].avg_ts > 0.0 && records[2].avg_ts > 0.0);
    let crashed = &records[1];
    let report = crashed.crash.as_ref().expect("crash report");
    assert_eq!(report.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(report.signal_number, Some(9));
    assert_eq!(report.exit_code, None);
    assert!(!report.timed_out);
    assert_eq!(Some(report.pid), killed);
    assert_eq!(report.phase, Some(Phase::Repetition { rep: 1, of: 1 }));
    assert!(!report.log_tail.is_empty(), "llama.cpp's log lines are kept");
    assert_eq!((crashed.n_prompt, crashed.n_gen), (0, 2048), "the record carries the trial's parameters");
    assert_eq!(crashed.error.as_deref(), Some("worker killed by SIGKILL during repetition 1/1"));
    assert_eq!(pids.len(), 2, "a fresh worker measured tg16: {pids:?}");
    assert_ne!(pids[0], pids[1]);
}

#[test]
fn a_llama_cpp_abort_is_a_crashed_record_with_ggmls_message() {
    // A quantized K cache of a type ggml cannot write (no SET_ROWS for IQ2_XXS): llama.cpp
    // GGML_ABORTs while reserving the graph, as llama-bench -ctk iq2_xxs -fa 1 does. (The tiny
    // synthetic model's heads are too small for IQ2_XXS blocks, which llama.cpp rejects cleanly.)
    let grid = Grid {
        n_prompt: vec![16],
        n_gen: vec![],
        type_k: vec![GgmlType::IQ2_XXS, GgmlType::F16],
        flash_attn: vec![FlashAttn::On],
        ..Grid::new(benchkit_suite::test_model())
    };
    let records: Vec<_> = SupervisedSweep::new(&grid, settings(2), opts()).unwrap().collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].status, Status::Crashed, "{:?}", records[0].error);
    let report = records[0].crash.as_ref().unwrap();
    assert_eq!(report.signal.as_deref(), Some("SIGABRT"));
    let message = report.abort_message.as_deref().expect("ggml's abort message");
    assert!(message.contains("SET_ROWS"), "{message}");
    assert!(records[0].error.as_deref().unwrap().contains(message));
    assert_eq!(report.phase, Some(Phase::Context), "it aborts creating the context");
    assert_eq!(records[0].type_k, "iq2_xxs");
    assert_eq!(records[1].status, Status::Ok, "{:?}", records[1].error);
    assert_eq!(records[1].type_k, "f16");
}

#[test]
fn a_trial_past_its_timeout_is_killed_and_recorded() {
    // tg 200000 on one thread takes minutes; the trial has 3 s.
    let model = tiny_model();
    let backend = Backend::init().unwrap();
    let mut points = Sweep::new(
        &backend,
        &Grid { n_prompt: vec![], n_gen: vec![8], n_threads: vec![1], ..Grid::new(&model) },
        settings(1),
    )
    .unwrap()
    .points()
    .to_vec();
    let mut long = points[0].clone();
    long.test = Test::tg(200_000);
    points.insert(0, long);
    let start = Instant::now();
    let records: Vec<_> =
        SupervisedSweep::from_points(points, settings(1), opts().timeout(Duration::from_secs(3))).collect();
    let took = start.elapsed();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].status, Status::Timeout, "{:?}", records[0].error);
    let report = records[0].crash.as_ref().unwrap();
    assert!(report.timed_out);
    assert_eq!(report.timeout_ms, Some(3000));
    assert!(report.elapsed_ms >= 3000, "{}", report.elapsed_ms);
    assert_eq!(report.signal.as_deref(), Some("SIGKILL"));
    assert!(records[0].error.as_deref().unwrap().starts_with("timed out after 3000 ms"), "{:?}", records[0].error);
    assert_eq!(records[1].status, Status::Ok, "{:?}", records[1].error);
    assert_eq!(records[1].test, "tg8");
    assert!(took < Duration::from_secs(60), "the sweep did not wait for the long trial: {took:?}");
}

#[test]
fn supervised_records_match_in_process_ones() {
    // Same points, same seeds: the worker measures what the in-process sweep measures, and
    // phases arrive in order with timestamps.
    let grid = Grid { n_prompt: vec![16], n_gen: vec![4], n_threads: vec![1], ..Grid::new(tiny_model()) };
    let backend = Backend::init().unwrap();
    let local: Vec<_> = Sweep::new(&backend, &grid, settings(2)).unwrap().collect();
    let mut phases = Vec::new();
    let remote: Vec<_> = SupervisedSweep::new(&grid, settings(2), opts())
        .unwrap()
        .on_progress(|p| {
            if let Progress::Phase { index, phase, unix_ns } = p {
                phases.push((*index, *phase, *unix_ns));
            }
        })
        .collect();
    assert_eq!(local.len(), remote.len());
    for (l, r) in local.iter().zip(&remote) {
        assert_eq!(r.status, Status::Ok);
        assert_eq!((&l.test, l.seed, l.n_ctx, l.model_n_params), (&r.test, r.seed, r.n_ctx, r.model_n_params));
        assert_eq!(r.samples_ns.len(), 2);
    }
    let first: Vec<Phase> = phases.iter().filter(|p| p.0 == 0).map(|p| p.1).collect();
    assert_eq!(
        first,
        [
            Phase::Start,
            Phase::Load,
            Phase::Context,
            Phase::Warmup,
            Phase::Repetition { rep: 1, of: 2 },
            Phase::Repetition { rep: 2, of: 2 },
            Phase::Finished
        ]
    );
    // The second point reuses the loaded model, as llama-bench does.
    assert!(!phases.iter().any(|p| p.0 == 1 && p.1 == Phase::Load));
    assert!(phases.windows(2).all(|w| w[0].2 <= w[1].2), "timestamps in order");
}

#[test]
fn a_cancelled_sweep_kills_its_worker_and_marks_what_it_did_not_measure() {
    use benchkit::bench::BenchConfig;
    use benchkit::supervise::{Cancel, Isolation};
    let cancel = Cancel::new();
    let config = BenchConfig {
        grid: Grid { n_prompt: vec![16], n_gen: vec![4096, 16], n_threads: vec![2], ..Grid::new(tiny_model()) },
        run: settings(1),
        isolation: Isolation::Worker(opts()),
        cancel: Some(cancel.clone()),
        telemetry: Default::default(),
    };
    let backend = Backend::init().unwrap();
    let mut pids = Vec::new();
    let mut cancelled_at = None;
    let records: Vec<_> = config
        .run(&backend, |p| match p {
            Progress::Worker { pid } => pids.push(*pid),
            Progress::Phase { index: 1, phase: Phase::Repetition { .. }, .. } if cancelled_at.is_none() => {
                cancel.cancel();
                cancelled_at = Some(Instant::now());
            }
            _ => {}
        })
        .unwrap()
        .collect();
    let stopped = cancelled_at.expect("tg4096 started").elapsed();
    let tests: Vec<(&str, Status)> = records.iter().map(|r| (r.test.as_str(), r.status)).collect();
    assert_eq!(tests, [("pp16", Status::Ok), ("tg4096", Status::Cancelled), ("tg16", Status::Cancelled)]);
    assert_eq!(records[1].crash.as_ref().map(|c| c.phase), Some(Some(Phase::Repetition { rep: 1, of: 1 })));
    assert!(records[1].error.as_deref().unwrap().ends_with(": cancelled"), "{:?}", records[1].error);
    assert_eq!(records[2].error.as_deref(), Some("cancelled before it started"));
    assert_eq!(pids.len(), 1, "no worker was started after the cancel: {pids:?}");
    assert!(!std::path::Path::new(&format!("/proc/{}", pids[0])).exists(), "the worker was killed and reaped");
    // The supervisor looks at the flag every 20 ms; a loaded 2-core machine gets a wide margin.
    assert!(stopped < Duration::from_secs(10), "{stopped:?}");
}

#[test]
fn an_in_process_sweep_stops_after_the_point_in_progress() {
    use benchkit::bench::BenchConfig;
    use benchkit::supervise::{Cancel, Isolation};
    let cancel = Cancel::new();
    let config = BenchConfig {
        grid: Grid { n_prompt: vec![16, 32], n_gen: vec![], n_threads: vec![2], ..Grid::new(tiny_model()) },
        run: settings(1),
        isolation: Isolation::InProcess,
        cancel: Some(cancel.clone()),
        telemetry: Default::default(),
    };
    let backend = Backend::init().unwrap();
    let records: Vec<_> = config
        .run(&backend, |p| {
            if matches!(p, Progress::Start { index: 0, .. }) {
                cancel.cancel();
            }
        })
        .unwrap()
        .collect();
    let tests: Vec<(&str, Status)> = records.iter().map(|r| (r.test.as_str(), r.status)).collect();
    assert_eq!(tests, [("pp16", Status::Ok), ("pp32", Status::Cancelled)]);
}
