//! Storing a run as it is produced: what `--store` on `bench`, `perplexity`, `replay` and
//! `placement` does, for any program that produces results.
//!
//! The run is created with its first record, marked `interrupted` until [`RunWriter::finish`]
//! marks it `ok`: a process killed mid-sweep leaves every finished record and a run that says
//! it did not finish. Each record is its own transaction.

use super::{RunId, RunMeta, Store, StoreError, StoredRecord};
use crate::Provenance;

/// What an unfinished run says.
pub const INTERRUPTED: &str = "the run did not finish: the records stored are those it completed";

/// A run being written (see the [module](self) documentation).
#[derive(Debug)]
pub struct RunWriter {
    store: Store,
    label: Option<String>,
    run: Option<RunId>,
    records: usize,
    failed: Option<StoreError>,
}

impl RunWriter {
    /// Opens (creating or upgrading) the store at `spec`; the run takes its kind (`bench`,
    /// `perplexity`, `kl-divergence`, `replay`, `placement`) from its first record.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open(spec: &str, label: Option<String>) -> Result<Self, StoreError> {
        Ok(RunWriter { store: Store::open(spec)?, label, run: None, records: 0, failed: None })
    }

    /// Stores one record; the first also stores the run, from its provenance.
    ///
    /// # Errors
    /// [`StoreError`]: nothing of the failing record is stored.
    pub fn write(&mut self, provenance: &Provenance, record: &StoredRecord) -> Result<i64, StoreError> {
        let run = match self.run {
            Some(r) => r,
            None => {
                let mut meta = RunMeta::from_provenance(&record.kind, provenance).label(self.label.clone());
                meta.status = "interrupted".into();
                meta.error = Some(INTERRUPTED.into());
                *self.run.insert(self.store.insert_run(&meta)?)
            }
        };
        let id = self.store.insert_record(run, record)?;
        self.records += 1;
        Ok(id)
    }

    /// Stores one record unless an earlier one failed; a failure is kept for
    /// [`RunWriter::finish`] so that the measurement goes on (its other outputs still get
    /// every record). Returns the failure's message the first time.
    pub fn push(&mut self, provenance: &Provenance, record: &StoredRecord) -> Option<String> {
        if self.failed.is_some() {
            return None;
        }
        let e = self.write(provenance, record).err()?;
        let msg = format!("{e}: later results are not stored ({} were)", self.records);
        self.failed = Some(e);
        Some(msg)
    }

    /// A bench record, as [`RunWriter::push`] stores it (a sweep stores each as it ends).
    #[cfg(feature = "bench")]
    pub fn bench(&mut self, record: &crate::bench::BenchRecord) -> Option<String> {
        self.push(&record.provenance, &StoredRecord::from(record))
    }

    /// A perplexity or KL-divergence result.
    ///
    /// # Errors
    /// [`StoreError`]: nothing of it is stored.
    #[cfg(feature = "perplexity")]
    pub fn perplexity(&mut self, output: &crate::perplexity::PerplexityOutput) -> Result<(), StoreError> {
        use crate::perplexity::PerplexityOutput;
        match output {
            PerplexityOutput::Perplexity(r) => self.write(&r.provenance, &StoredRecord::from(&**r)),
            PerplexityOutput::KlDivergence(r) => self.write(&r.provenance, &StoredRecord::from(&**r)),
        }
        .map(|_| ())
    }

    /// A replay result with its requests' records, whose latencies become the stored
    /// metrics' samples (what comparisons test). A run that flagged itself invalid
    /// ([`ReplayResult::invalid`](crate::replay::ReplayResult::invalid)) is stored with status
    /// `invalid` and the reason.
    ///
    /// # Errors
    /// [`StoreError`]: nothing of it is stored.
    #[cfg(feature = "replay")]
    pub fn replay(
        &mut self,
        result: &crate::replay::ReplayResult,
        requests: &[crate::replay::RequestRecord],
    ) -> Result<(), StoreError> {
        let mut record = StoredRecord::from(result).with_request_samples(requests);
        // A run whose client was the bottleneck did not measure the server: comparisons leave
        // it out, as they do placement arms that failed verification.
        if let (Some(why), "ok") = (&result.invalid, record.status.as_str()) {
            record.status = "invalid".into();
            record.error = Some(why.clone());
        }
        self.write(&result.provenance, &record).map(|_| ())
    }

    /// A placement report: one record per arm (see [`super::placement_records`]).
    ///
    /// # Errors
    /// [`StoreError`]: the arms stored before the failing one stay.
    #[cfg(feature = "placement")]
    pub fn placement(&mut self, report: &crate::placement::PlacementReport) -> Result<(), StoreError> {
        for record in super::placement_records(report) {
            self.write(&report.provenance, &record)?;
        }
        Ok(())
    }

    /// The run, once a record was stored.
    pub fn run_id(&self) -> Option<RunId> {
        self.run
    }

    /// How many records were stored.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Marks the run finished (`ok`), or `failed` with the reason; returns it (`None` when no
    /// record was written, so no run was stored).
    ///
    /// # Errors
    /// The first failure [`RunWriter::push`] kept (the run then stays `interrupted`), or
    /// [`StoreError`] from marking it.
    pub fn finish(self, error: Option<&str>) -> Result<Option<RunId>, StoreError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if let Some(r) = self.run {
            let status = if error.is_some() { "failed" } else { "ok" };
            self.store.set_run_status(r, status, error)?;
        }
        Ok(self.run)
    }

    /// A line for stderr: where the run went.
    pub fn summary(&self) -> String {
        match self.run {
            Some(r) => format!("stored run {} ({} record(s)) in {}", r.0, self.records, self.store.name()),
            None => format!("nothing stored in {}", self.store.name()),
        }
    }
}
