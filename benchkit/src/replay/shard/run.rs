//! The replay's side of a shard: its slice, the wait for the agreed start, its file.

use super::{schedule_identity, slice, unix_ns, ShardConfig, ShardError, ShardFile, FORMAT, MAX_START_AHEAD};
use crate::replay::metrics::Aggregator;
use crate::replay::{ReplayConfig, ReplayResult, Request, TargetConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A shard being run (the replay's side: see [`PreparedReplay::run_async`](crate::replay::PreparedReplay::run_async)).
#[derive(Debug)]
pub(crate) struct ShardRun {
    config: ShardConfig,
    identity: String,
    origin: Option<SystemTime>,
}

impl ShardRun {
    /// Checks the shard, computes the identity of the full schedule and returns this shard's
    /// slice of it; its records go to [`ShardConfig::records_path`] unless the replay saves
    /// them elsewhere. `requests` unchanged and `None` when the replay is not sharded.
    pub(crate) fn begin(
        c: &mut ReplayConfig,
        requests: Vec<Request>,
    ) -> Result<(Vec<Request>, Option<ShardRun>), ShardError> {
        let Some(config) = c.shard.clone() else { return Ok((requests, None)) };
        #[allow(irrefutable_let_patterns)]
        if let TargetConfig::Inproc(_) = c.target {
            return Err(ShardError::Target);
        }
        if let Some(at) = config.start_at {
            let now = SystemTime::now();
            match at.duration_since(now) {
                Ok(ahead) if ahead > MAX_START_AHEAD => return Err(ShardError::StartTooFar { ahead }),
                Ok(_) => {}
                Err(e) => return Err(ShardError::StartPassed { late: e.duration() }),
            }
        }
        std::fs::create_dir_all(&config.dir).map_err(|source| ShardError::Io { path: config.dir.clone(), source })?;
        let identity = schedule_identity(&requests, &c.workload, &c.schedule, config.spec.count);
        c.save_requests.get_or_insert_with(|| config.records_path());
        let requests = slice(requests, config.spec);
        Ok((requests, Some(ShardRun { config, identity, origin: None })))
    }

    /// Waits for the agreed start (sleeping, then yielding the last 2 ms for precision) and
    /// takes the shard's time 0: call it right before driving the schedule.
    #[cfg_attr(not(feature = "replay-http"), allow(dead_code))]
    pub(crate) async fn wait_start(&mut self) -> Result<(), ShardError> {
        if let Some(at) = self.config.start_at {
            let remaining =
                at.duration_since(SystemTime::now()).map_err(|e| ShardError::StartPassed { late: e.duration() })?;
            let deadline = std::time::Instant::now() + remaining;
            if let Some(coarse) = deadline.checked_sub(Duration::from_millis(2)) {
                tokio::time::sleep_until(coarse.into()).await;
            }
            while std::time::Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
        }
        self.origin = Some(SystemTime::now());
        Ok(())
    }

    /// Writes the shard file (to a temporary name, then renamed: a merge never reads half a
    /// file) and returns its path.
    pub(crate) fn finish(
        self,
        agg: &Aggregator,
        duration: Duration,
        records: Option<&Path>,
        result: &ReplayResult,
    ) -> Result<PathBuf, ShardError> {
        let path = self.config.result_path();
        let aggregator = agg.state().map_err(|source| ShardError::Corrupt { path: path.clone(), source })?;
        // Records inside the shard directory are named relative to it, so the directory can move.
        let records_file = records.map(|p| match p.strip_prefix(&self.config.dir) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
        });
        let file = ShardFile {
            format: FORMAT.to_string(),
            shard: self.config.spec,
            schedule_id: self.identity,
            start_at_unix_ns: self.config.start_at.map(unix_ns),
            origin_unix_ns: unix_ns(self.origin.unwrap_or_else(SystemTime::now)),
            duration_ns: u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
            records_file,
            aggregator,
            result: result.clone(),
        };
        let io = |source| ShardError::Io { path: path.clone(), source };
        let tmp = path.with_extension("json.partial");
        let text =
            serde_json::to_vec_pretty(&file).map_err(|source| ShardError::Json { path: path.clone(), source })?;
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }
}
