//! The worker executable for supervised trials (`benchkit::supervise`): for programs that cannot
//! re-execute themselves as workers (test harnesses, embedders that own `main`), named through
//! `WorkerCommand::program` or `BENCHKIT_WORKER_EXE`.

fn main() {
    benchkit::supervise::worker_entry();
    eprintln!(
        "benchkit-worker runs supervised trials for a benchkit supervisor, which starts it with {}=1; \
         it is not meant to be run by hand",
        benchkit::supervise::WORKER_ENV
    );
    std::process::exit(2);
}
