//! `benchkit replay` over several rates (`--request-rate 1,2,4`, `--sweep saturation`,
//! `--slo ... --search max-rate`): a curve row on stderr as each run ends, the CSV line and the
//! store record written then too; at the end the curve and the conclusion on stdout, and the
//! sweep JSON (every point's full result) in `--save-result`.

use benchkit::cli::replay::ReplayArgs;
use benchkit::replay::sweep::{curve, run_sweep, SweepConfig, SweepObserver, SweepPoint};
use benchkit::replay::{PreparedReplay, ReplayConfig, RequestRate, RequestRecord};
use benchkit::store::{RunWriter, StoreError};
use benchkit::Backend;
use std::io::Write;
use std::time::Instant;

struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    started: Instant,
    points: usize,
    csv: Option<(std::path::PathBuf, std::fs::File)>,
    csv_error: Option<std::io::Error>,
    store: Option<RunWriter>,
    store_error: Option<StoreError>,
    requests: Vec<RequestRecord>,
}

impl SweepObserver for Progress {
    fn prepared(&mut self, replay: &PreparedReplay) {
        if let Some(t) = &replay.dataset().truncation {
            eprintln!("dataset {}: {t}", replay.dataset().path.as_deref().unwrap_or("?"));
        }
        self.total = replay.requests().len();
    }

    fn start(&mut self, rate: RequestRate) {
        (self.done, self.failed, self.started) = (0, 0, Instant::now());
        self.requests.clear();
        eprintln!("request rate {rate}:");
    }

    fn record(&mut self, rec: &RequestRecord) {
        self.done += 1;
        self.failed += usize::from(!rec.ok());
        if self.store.is_some() {
            self.requests.push(rec.clone());
        }
        let (done, total, failed) = (self.done, self.total, self.failed);
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        eprint!("\r{done}/{total} done, {failed} failed, {rate:.2} req/s   ");
    }

    fn point(&mut self, p: &SweepPoint) {
        eprintln!();
        if self.points == 0 {
            eprintln!("{}", curve::header());
        }
        self.points += 1;
        eprintln!("{}", curve::row(p));
        if let Some(why) = &p.invalid {
            eprintln!(
                "WARNING: invalid run, the client was the bottleneck ({why}); its latencies are not the server's"
            );
        }
        if let (Some((_, f)), None) = (&mut self.csv, &self.csv_error) {
            if let Err(e) = writeln!(f, "{}", curve::csv_row(p)).and_then(|()| f.flush()) {
                self.csv_error = Some(e);
            }
        }
        if let (Some(w), None) = (&mut self.store, &self.store_error) {
            if let Err(e) = w.replay(&p.result, &self.requests) {
                self.store_error = Some(e);
            }
        }
    }
}

/// Runs the sweep and prints it.
pub fn main(args: &ReplayArgs, config: ReplayConfig, sweep: &SweepConfig, backend: &Backend) -> anyhow::Result<()> {
    let csv = match &args.sweep.sweep_csv {
        Some(path) => {
            let mut f =
                std::fs::File::create(path).map_err(|e| anyhow::anyhow!("--sweep-csv {}: {e}", path.display()))?;
            writeln!(f, "{}", curve::csv_header())?;
            Some((path.clone(), f))
        }
        None => None,
    };
    let mut progress = Progress {
        total: 0,
        done: 0,
        failed: 0,
        started: Instant::now(),
        points: 0,
        csv,
        csv_error: None,
        store: args.store.writer()?,
        store_error: None,
        requests: Vec::new(),
    };
    let outcome = run_sweep(config, sweep, backend, &mut progress);
    if let Some(w) = &progress.store {
        if w.records() > 0 {
            eprintln!("{}", w.summary());
        }
    }
    let result = match outcome {
        Ok(r) => r,
        Err(e) => {
            if let Some(w) = progress.store.take() {
                w.finish(Some(&e.to_string()))?;
            }
            return Err(e.into());
        }
    };
    println!("{}", curve::table(&result.points));
    println!("{}", curve::conclusion(&result.conclusion));
    let invalid = result.points.iter().filter(|p| p.invalid.is_some()).count();
    if invalid > 0 {
        eprintln!(
            "WARNING: the client flagged {invalid} of {} runs invalid (column client): their latencies include the client's",
            result.points.len()
        );
    }
    if let Some(p) = &args.save_result {
        std::fs::write(p, serde_json::to_string_pretty(&result)?)?;
    }
    if let (Some((path, _)), Some(e)) = (&progress.csv, progress.csv_error) {
        anyhow::bail!("--sweep-csv {}: {e}", path.display());
    }
    if let Some(e) = progress.store_error {
        return Err(e.into());
    }
    if let Some(w) = progress.store {
        w.finish(None)?;
    }
    Ok(())
}
