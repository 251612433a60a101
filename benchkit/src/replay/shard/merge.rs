//! The merge of a sharded replay's files into one [`ReplayResult`].

use super::{ShardError, ShardFile, FORMAT};
use crate::replay::metrics::{read_records, Aggregator};
use crate::replay::{ReplayResult, RequestRecord};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// The shard files among `inputs`: a file is taken as it is, a directory for its
/// `shard-I-of-N.json` files (sorted by name).
///
/// # Errors
/// [`ShardError::Io`] for an input that cannot be read, [`ShardError::NoShards`] when
/// nothing is found.
pub fn shard_files(inputs: &[impl AsRef<Path>]) -> Result<Vec<PathBuf>, ShardError> {
    let mut files = Vec::new();
    for input in inputs {
        let input = input.as_ref();
        let io = |source| ShardError::Io { path: input.to_path_buf(), source };
        if !input.is_dir() {
            std::fs::metadata(input).map_err(io)?;
            files.push(input.to_path_buf());
            continue;
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(input).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let is_shard = name.strip_prefix("shard-").and_then(|n| n.strip_suffix(".json")).is_some_and(|mid| {
                mid.split_once("-of-").is_some_and(|(i, n)| i.parse::<u32>().is_ok() && n.parse::<u32>().is_ok())
            });
            if is_shard {
                found.push(path);
            }
        }
        found.sort();
        files.extend(found);
    }
    if files.is_empty() {
        let inputs = inputs.iter().map(|p| p.as_ref().display().to_string()).collect::<Vec<_>>().join(", ");
        return Err(ShardError::NoShards { inputs });
    }
    Ok(files)
}

/// One shard file.
///
/// # Errors
/// [`ShardError::Io`], [`ShardError::Json`] for a file that is not a shard file,
/// [`ShardError::Format`] for another format version.
pub fn read_shard(path: impl AsRef<Path>) -> Result<ShardFile, ShardError> {
    let path = path.as_ref();
    let text = std::fs::read(path).map_err(|source| ShardError::Io { path: path.to_path_buf(), source })?;
    // The format is checked first, so a file of a later version says so instead of failing
    // on a field it renamed.
    #[derive(serde::Deserialize)]
    struct Head {
        format: Option<String>,
    }
    let json = |source| ShardError::Json { path: path.to_path_buf(), source };
    let head: Head = serde_json::from_slice(&text).map_err(json)?;
    match head.format.as_deref() {
        Some(FORMAT) => serde_json::from_slice(&text).map_err(json),
        other => Err(ShardError::Format { path: path.to_path_buf(), found: other.unwrap_or("none").to_string() }),
    }
}

/// Reads the shard files among `inputs` ([`shard_files`]) and merges them ([`merge_files`]).
///
/// # Errors
/// As those two.
pub fn merge(inputs: &[impl AsRef<Path>]) -> Result<ReplayResult, ShardError> {
    let shards =
        shard_files(inputs)?.into_iter().map(|p| read_shard(&p).map(|f| (p, f))).collect::<Result<Vec<_>, _>>()?;
    merge_files(shards)
}

/// One result from every shard of a run: all `N` present once, of one schedule and one agreed
/// start. Histograms add, counters add, moments merge; the duration runs from the shared
/// start (the agreed one, else the earliest shard's) to the latest shard's end. The result
/// reads as a single run's (vLLM field names); its provenance is the first shard's, started at
/// the shared start, with `settings.shards` listing each shard (file, host, start, lag behind
/// the shared start, counts, build) and `settings.merge` how the clocks were aligned.
/// Telemetry, server metrics and the clients' self-checks stay in the shard files (a sum of
/// per-process figures would mean nothing); the result is `invalid` when any shard was.
///
/// # Errors
/// [`ShardError::NoShards`], [`ShardError::CountMismatch`], [`ShardError::ScheduleMismatch`],
/// [`ShardError::StartMismatch`], [`ShardError::Duplicate`], [`ShardError::Missing`],
/// [`ShardError::Corrupt`] and [`ShardError::Merge`].
pub fn merge_files(shards: Vec<(PathBuf, ShardFile)>) -> Result<ReplayResult, ShardError> {
    let Some((first_path, first)) = shards.first() else {
        return Err(ShardError::NoShards { inputs: "an empty list".into() });
    };
    let mut by_index: BTreeMap<u32, &PathBuf> = BTreeMap::new();
    for (path, f) in &shards {
        if f.shard.count != first.shard.count {
            let (path, expected) = (path.clone(), first.shard);
            return Err(ShardError::CountMismatch { path, found: f.shard, first: first_path.clone(), expected });
        }
        if f.schedule_id != first.schedule_id {
            return Err(ShardError::ScheduleMismatch {
                path: path.clone(),
                found: f.schedule_id.clone(),
                first: first_path.clone(),
                expected: first.schedule_id.clone(),
            });
        }
        if f.start_at_unix_ns != first.start_at_unix_ns {
            return Err(ShardError::StartMismatch {
                path: path.clone(),
                found: f.start_at_unix_ns,
                first: first_path.clone(),
                expected: first.start_at_unix_ns,
            });
        }
        if let Some(other) = by_index.insert(f.shard.index, path) {
            return Err(ShardError::Duplicate { index: f.shard.index, first: other.clone(), second: path.clone() });
        }
    }
    let count = first.shard.count;
    let missing: Vec<u32> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(ShardError::Missing { missing, count });
    }
    let (origin, aligned_by) = match first.start_at_unix_ns {
        Some(at) => (at, "the agreed start (--start-at)"),
        None => (shards.iter().map(|(_, f)| f.origin_unix_ns).min().unwrap_or(0), "the earliest shard's start"),
    };
    let mut ordered: Vec<&(PathBuf, ShardFile)> = shards.iter().collect();
    ordered.sort_by_key(|(_, f)| f.shard.index);
    let mut merged: Option<Aggregator> = None;
    let mut duration_ns = 0u64;
    let mut listed = Vec::new();
    for (path, f) in ordered {
        let offset = f.offset_ns(origin);
        let mut state = f.aggregator.clone();
        state.first_sent_ns = state.first_sent_ns.map(|t| t.saturating_add(offset));
        state.last_end_ns = state.last_end_ns.map(|t| t.saturating_add(offset));
        let agg =
            Aggregator::from_state(&state).map_err(|source| ShardError::Corrupt { path: path.clone(), source })?;
        match &mut merged {
            None => merged = Some(agg),
            Some(m) => m.merge(&agg).map_err(|source| ShardError::Merge { path: path.clone(), source })?,
        }
        duration_ns = duration_ns.max(offset.saturating_add(f.duration_ns));
        let p = &f.result.provenance;
        listed.push(serde_json::json!({
            "index": f.shard.index,
            "file": path,
            "records_file": f.records_file,
            "host": p.host,
            "started_at": p.started_at,
            "origin_unix_ns": f.origin_unix_ns,
            "start_lag_ms": offset as f64 / 1e6,
            "duration_s": f.duration_ns as f64 / 1e9,
            "completed": f.aggregator.completed,
            "failed": f.aggregator.failed,
            "backend": f.result.backend,
            "invalid": f.result.invalid,
            "benchkit_version": p.benchkit_version,
            "build_commit": p.build.build_commit,
        }));
    }
    let agg = merged.unwrap_or_default();
    let base = &first.result;
    let start = UNIX_EPOCH + Duration::from_nanos(origin);
    let mut provenance = base.provenance.clone();
    provenance.started_at =
        chrono::DateTime::<chrono::Utc>::from(start).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let merge_info = serde_json::json!({
        "shards": count,
        "schedule_id": first.schedule_id,
        "aligned_by": aligned_by,
        "origin_unix_ns": origin,
        "merged_at": crate::provenance::rfc3339_now(),
        "merged_on": crate::Provenance::now().host,
        "first_sent_s": agg.span_ns().map(|(s, _)| s as f64 / 1e9),
        "last_end_s": agg.span_ns().map(|(_, e)| e as f64 / 1e9),
    });
    provenance = provenance.setting("shards", &listed).setting("merge", &merge_info);
    let invalid: Vec<String> = shards
        .iter()
        .filter_map(|(_, f)| f.result.invalid.as_ref().map(|why| format!("shard {}: {why}", f.shard)))
        .collect();
    let concurrency: Option<Vec<usize>> = shards.iter().map(|(_, f)| f.result.max_concurrency).collect();
    Ok(ReplayResult {
        summary: agg.finish(Duration::from_nanos(duration_ns)),
        backend: base.backend.clone(),
        model_id: base.model_id.clone(),
        tokenizer_id: base.tokenizer_id.clone(),
        num_prompts: base.num_prompts,
        request_rate: base.request_rate,
        burstiness: base.burstiness,
        // Each shard bounds its own requests in flight: together, the sum.
        max_concurrency: concurrency.map(|c| c.iter().sum()),
        date: chrono::DateTime::<chrono::Local>::from(start).format("%Y%m%d-%H%M%S").to_string(),
        telemetry: crate::telemetry::Telemetry::unavailable(
            "merged shards: each shard's telemetry is in its shard file",
        ),
        server_metrics: None,
        // Each shard checked its own client; the merge is invalid when any shard was.
        client_check: None,
        invalid: (!invalid.is_empty()).then(|| invalid.join("; ")),
        provenance,
    })
}

/// Every shard's per-request records (the files their `records_file` names, relative to the
/// shard file's directory), in shard order, with their times moved onto the shared clock of
/// [`merge_files`] (each shard's lag behind the shared start added). Shards that kept no
/// records file add none.
///
/// # Errors
/// [`ShardError::Corrupt`] for a records file that cannot be read or parsed.
pub fn merged_records(shards: &[(PathBuf, ShardFile)]) -> Result<Vec<RequestRecord>, ShardError> {
    let files: Vec<ShardFile> = shards.iter().map(|(_, f)| f.clone()).collect();
    let origin = shared_origin(&files).unwrap_or(0);
    let mut ordered: Vec<&(PathBuf, ShardFile)> = shards.iter().collect();
    ordered.sort_by_key(|(_, f)| f.shard.index);
    let mut out = Vec::new();
    for (path, f) in ordered {
        let Some(records) = &f.records_file else { continue };
        let records = path.parent().map_or_else(|| records.clone(), |dir| dir.join(records));
        let corrupt = |source| ShardError::Corrupt { path: records.clone(), source };
        let offset = f.offset_ns(origin);
        for mut r in read_records(&records).map_err(corrupt)? {
            r.scheduled_ns += offset;
            r.sent_ns += offset;
            r.end_ns += offset;
            r.first_token_ns = r.first_token_ns.map(|t| t + offset);
            out.push(r);
        }
    }
    Ok(out)
}

/// The shared start, unix ns, of merged shard files (for callers that align records).
pub fn shared_origin(shards: &[ShardFile]) -> Option<u64> {
    shards.first()?.start_at_unix_ns.or_else(|| shards.iter().map(|f| f.origin_unix_ns).min())
}
