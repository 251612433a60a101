//! The results store: every result benchkit produces (bench records, perplexity and
//! KL-divergence results, replay results) and the history it imports (llama-bench's outputs,
//! vLLM's benchmark JSON), normalised into runs, records, parameters, metrics, raw samples and
//! telemetry summaries, each with its provenance.
//!
//! SQLite (a file, the default) or PostgreSQL (`postgres://...`, feature `postgres`), behind one
//! API. Each record is written in its own transaction as it is produced, so an interrupted run
//! leaves every finished record and never half of one.
//!
//! ```no_run
//! use benchkit::store::{Filter, Store};
//! let store = Store::open("results.db")?;
//! for e in store.entries(&Filter::parse("model=gemma3 270M Q4_K - Medium,n_threads=2")?)? {
//!     println!("{} {} {:?}", e.run.meta.build_commit, e.record.name, e.record.metrics.get("ts").map(|m| m.mean));
//! }
//! # Ok::<(), benchkit::store::StoreError>(())
//! ```

mod conn;
#[cfg(feature = "postgres")]
mod postgres;
mod schema;
mod sqlite;

pub mod compare;
mod filter;
pub mod import;
#[cfg(feature = "placement")]
mod placement;
pub mod rankings;
mod record;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use conn::{Conn, Value};
pub use filter::Filter;
#[cfg(feature = "placement")]
pub use placement::placement_records;
pub use record::{Metric, RunMeta, StoredRecord};
pub use schema::SCHEMA_VERSION;
pub use writer::{RunWriter, INTERRUPTED};

/// What can go wrong with a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened (the URL is shown without its password).
    #[error("cannot open store {store}: {reason}")]
    Open {
        /// The path or redacted URL.
        store: String,
        /// Why.
        reason: String,
    },
    /// A read-only open of a store that does not exist.
    #[error("no store at {0} (runs write one with --store)")]
    NotFound(PathBuf),
    /// A `postgres://` store in a build without the `postgres` feature.
    #[error("{0} is a PostgreSQL store; this build has no `postgres` feature")]
    NoPostgres(String),
    /// The database refused a statement.
    #[error("store: {0}")]
    Database(String),
    /// The store was written by a newer benchkit.
    #[error("the store has schema version {found}; this benchkit reads up to {supported}: upgrade benchkit")]
    NewerSchema {
        /// The store's version.
        found: i64,
        /// This benchkit's.
        supported: i64,
    },
    /// A migration failed; the store stays at the version before it.
    #[error("store migration to version {version} failed: {reason}")]
    Migration {
        /// The version it was migrating to.
        version: i64,
        /// Why.
        reason: String,
    },
    /// A filter that is not `key=value[,key=value...]`.
    #[error("filter {filter:?}: {reason}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// What is wrong.
        reason: String,
    },
    /// A run id that is not in the store.
    #[error("no run {0} in the store")]
    NoRun(i64),
    /// A result that does not serialise (non-string map keys and the like).
    #[error("cannot store the result: {0}")]
    Serialize(String),
}

/// A run's id in its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub i64);

/// A stored run: its metadata, as written, and its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The id.
    pub id: RunId,
    /// When it was stored (RFC 3339).
    pub stored_at: String,
    /// How many records it has.
    pub n_records: u64,
    /// What was written.
    #[serde(flatten)]
    pub meta: RunMeta,
}

/// One stored record with the run it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The record's id in the store.
    pub id: i64,
    /// Its position in its run.
    pub seq: i64,
    /// The run.
    pub run: std::sync::Arc<Run>,
    /// The record.
    pub record: StoredRecord,
}

impl Run {
    /// A run-level key's value (see [`RUN_KEYS`]; `kind` too); `None` for other keys.
    pub fn value(&self, key: &str) -> Option<String> {
        let m = &self.meta;
        Some(match key {
            "run" => self.id.0.to_string(),
            "kind" => m.kind.clone(),
            "source" => m.source.clone(),
            "label" => m.label.clone()?,
            "build_commit" | "commit" => m.build_commit.clone(),
            "build_number" | "build" => m.build_number.to_string(),
            "machine" => m.machine.clone(),
            "host" => m.host.clone()?,
            "started_at" => m.started_at.clone(),
            "run_status" => m.status.clone(),
            _ => return None,
        })
    }
}

impl Entry {
    /// A key's value as filters and comparisons see it: the record's (`name`/`test`, `model`,
    /// `status`, `kind`), the run's ([`RUN_KEYS`]), then the record's parameters.
    pub fn value(&self, key: &str) -> Option<String> {
        let r = &self.record;
        Some(match key {
            "kind" => r.kind.clone(),
            "name" | "test" => r.name.clone(),
            "model" => r.model.clone(),
            "status" => r.status.clone(),
            k if RUN_KEYS.contains(&k) => return self.run.value(k),
            _ => return r.params.get(key).cloned(),
        })
    }
}

/// The run-level keys [`Entry::value`] knows besides parameters. Comparisons join on none of
/// them but the machine ([`compare`]), and never on a parameter that bears one of these names.
pub const RUN_KEYS: &[&str] = &[
    "run",
    "source",
    "label",
    "build_commit",
    "commit",
    "build_number",
    "build",
    "machine",
    "host",
    "started_at",
    "run_status",
];

/// The results store.
pub struct Store {
    conn: Mutex<Box<dyn Conn>>,
    name: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("store", &self.name).finish_non_exhaustive()
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`: errors and logs never
/// show a password.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    // The userinfo ends at the authority's last `@`: an unescaped password may hold `@`, `/`
    // or `?` (a hand-written URL), a host holds none of them, and the path or query may hold
    // an `@` of their own. So the authority ends at the first `/` or `?` after the first `@`.
    let Some(first_at) = rest.find('@') else { return redact_query(url) };
    let authority_end = rest[first_at..].find(['/', '?']).map_or(rest.len(), |i| first_at + i);
    let (auth, tail) = match rest[..authority_end].rfind('@') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => return redact_query(url),
    };
    let auth = match auth.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => auth.to_string(),
    };
    redact_query(&format!("{scheme}://{auth}{tail}"))
}

fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_string() };
    let q: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", q.join("&"))
}

fn is_postgres(spec: &str) -> bool {
    spec.starts_with("postgres://") || spec.starts_with("postgresql://")
}

impl Store {
    /// Opens (creating or upgrading) the store at `spec`: a file path, or a `postgres://` URL.
    ///
    /// # Errors
    /// [`StoreError::Open`] when it cannot be opened or is not a store,
    /// [`StoreError::NewerSchema`] when a newer benchkit wrote it, [`StoreError::Migration`]
    /// when an upgrade fails, [`StoreError::NoPostgres`] for a URL without the feature.
    pub fn open(spec: &str) -> Result<Self, StoreError> {
        Self::open_at(spec, SCHEMA_VERSION, false)
    }

    /// Opens an existing store without writing to it (no creation, no migration); `benchkit
    /// results serve` reads this way.
    ///
    /// # Errors
    /// As [`Store::open`], and [`StoreError::NotFound`] for a missing file; a store older than
    /// this benchkit must be opened for writing once to be upgraded.
    pub fn open_read_only(spec: &str) -> Result<Self, StoreError> {
        let mut conn = Self::connect(spec, true)?;
        let v = schema::version(conn.as_mut())?;
        let refuse = |reason: String| StoreError::Open { store: Self::display_name(spec), reason };
        match v {
            v if v == SCHEMA_VERSION => Ok(Store { conn: Mutex::new(conn), name: Self::display_name(spec) }),
            v if v > SCHEMA_VERSION => Err(StoreError::NewerSchema { found: v, supported: SCHEMA_VERSION }),
            // An empty database (or another program's): there is nothing to read, and a
            // read-only open must not create the tables.
            0 => Err(refuse("not a benchkit store (no schema_migrations table): runs create one with --store".into())),
            v => Err(refuse(format!(
                "schema version {v}, this benchkit writes {SCHEMA_VERSION}: open it for writing once (any run with --store) to upgrade it"
            ))),
        }
    }

    /// Opens the store migrated to `version` only: how tests make a store as an older
    /// benchkit wrote it.
    #[doc(hidden)]
    pub fn open_at(spec: &str, version: i64, read_only: bool) -> Result<Self, StoreError> {
        let mut conn = Self::connect(spec, read_only)?;
        schema::migrate(conn.as_mut(), version)?;
        Ok(Store { conn: Mutex::new(conn), name: Self::display_name(spec) })
    }

    fn display_name(spec: &str) -> String {
        if is_postgres(spec) {
            redact_url(spec)
        } else {
            spec.to_string()
        }
    }

    fn connect(spec: &str, read_only: bool) -> Result<Box<dyn Conn>, StoreError> {
        if is_postgres(spec) {
            #[cfg(feature = "postgres")]
            return Ok(Box::new(postgres::Postgres::open(spec, read_only)?));
            #[cfg(not(feature = "postgres"))]
            return Err(StoreError::NoPostgres(redact_url(spec)));
        }
        let path = std::path::Path::new(spec);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !read_only) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Open { store: spec.to_string(), reason: e.to_string() })?;
        }
        Ok(Box::new(sqlite::Sqlite::open(path, read_only)?))
    }

    /// The path or redacted URL.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema version of the database.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::version(self.lock().as_mut())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Conn>> {
        // A panic while holding the lock left no transaction open (each write commits or rolls
        // back before returning), so the connection is still good.
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` in one write transaction that also bumps the store's generation.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut guard = self.lock();
        let conn = guard.as_mut();
        conn.begin()?;
        // The bump comes first: on PostgreSQL its row lock makes concurrent writers (other
        // processes, other machines) take turns, as SQLite's `BEGIN IMMEDIATE` does, so that a
        // record's `max(seq) + 1` is never computed by two writers at once.
        let out = conn
            .execute(
                "UPDATE benchkit_meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = 'generation'",
                &[],
            )
            .and_then(|_| f(conn));
        match out {
            Ok(v) => {
                conn.batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = conn.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// A counter that every write moves on: readers cache until it changes.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn generation(&self) -> Result<i64, StoreError> {
        let rows = self.lock().query("SELECT value FROM benchkit_meta WHERE key = 'generation'", &[])?;
        Ok(rows.first().and_then(|r| r.first()).map_or(0, Value::int))
    }

    /// Stores a run's metadata; its records follow with [`Store::insert_record`].
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn insert_run(&self, meta: &RunMeta) -> Result<RunId, StoreError> {
        let provenance = serde_json::to_string(&meta.provenance).map_err(|e| StoreError::Serialize(e.to_string()))?;
        self.write(|c| {
            let rows = c.query(
                "INSERT INTO runs (kind, source, label, started_at, stored_at, benchkit_version, build_commit, build_number, machine, host, provenance, status, error)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                &[
                    meta.kind.as_str().into(),
                    meta.source.as_str().into(),
                    meta.label.clone().into(),
                    meta.started_at.as_str().into(),
                    crate::provenance::rfc3339_now().into(),
                    meta.benchkit_version.clone().into(),
                    meta.build_commit.as_str().into(),
                    (meta.build_number as i64).into(),
                    meta.machine.as_str().into(),
                    meta.host.clone().into(),
                    provenance.into(),
                    meta.status.as_str().into(),
                    meta.error.clone().into(),
                ],
            )?;
            Ok(RunId(rows.first().and_then(|r| r.first()).map_or(0, Value::int)))
        })
    }

    /// Sets a run's status (`ok`, `build_failed`, `failed`, `interrupted`) and error.
    ///
    /// # Errors
    /// [`StoreError::NoRun`], [`StoreError::Database`].
    pub fn set_run_status(&self, run: RunId, status: &str, error: Option<&str>) -> Result<(), StoreError> {
        self.write(|c| {
            let n = c.execute(
                "UPDATE runs SET status = ?, error = ? WHERE id = ?",
                &[status.into(), error.map(str::to_string).into(), run.0.into()],
            )?;
            if n == 0 {
                return Err(StoreError::NoRun(run.0));
            }
            Ok(())
        })
    }

    /// Adds parameters to every record of `run`, keeping those a record already has (how an
    /// experiment tags a treatment's run with its factor levels); returns how many were added.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn add_run_params(&self, run: RunId, params: &BTreeMap<String, String>) -> Result<u64, StoreError> {
        self.write(|c| {
            let mut added = 0;
            for (k, v) in params {
                // The WHERE clause keeps SQLite from reading ON CONFLICT as a join's ON.
                added += c.execute(
                    "INSERT INTO params (record_id, name, value) SELECT id, ?, ? FROM records WHERE run_id = ? ON CONFLICT DO NOTHING",
                    &[k.into(), v.into(), run.0.into()],
                )?;
            }
            Ok(added)
        })
    }

    /// Stores one record of `run`, with its parameters, metrics, samples and telemetry, in one
    /// transaction; returns its id.
    ///
    /// # Errors
    /// [`StoreError::NoRun`], [`StoreError::Serialize`], [`StoreError::Database`].
    pub fn insert_record(&self, run: RunId, rec: &StoredRecord) -> Result<i64, StoreError> {
        let ser = |v: &serde_json::Value| serde_json::to_string(v).map_err(|e| StoreError::Serialize(e.to_string()));
        let result = ser(&rec.result)?;
        let telemetry = rec.telemetry.as_ref().map(ser).transpose()?;
        self.write(|c| {
            let exists = c.query("SELECT count(*) FROM runs WHERE id = ?", &[run.0.into()])?;
            if exists.first().and_then(|r| r.first()).map_or(0, Value::int) == 0 {
                return Err(StoreError::NoRun(run.0));
            }
            let seq = c.query("SELECT coalesce(max(seq), -1) + 1 FROM records WHERE run_id = ?", &[run.0.into()])?;
            let seq = seq.first().and_then(|r| r.first()).map_or(0, Value::int);
            let id = c.query(
                "INSERT INTO records (run_id, seq, kind, name, model, status, error, result, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                &[
                    run.0.into(),
                    seq.into(),
                    rec.kind.as_str().into(),
                    rec.name.as_str().into(),
                    rec.model.as_str().into(),
                    rec.status.as_str().into(),
                    rec.error.clone().into(),
                    result.into(),
                    crate::provenance::rfc3339_now().into(),
                ],
            )?;
            let id = id.first().and_then(|r| r.first()).map_or(0, Value::int);
            for (k, v) in &rec.params {
                c.execute("INSERT INTO params (record_id, name, value) VALUES (?, ?, ?)", &[id.into(), k.into(), v.into()])?;
            }
            for (name, m) in &rec.metrics {
                c.execute(
                    "INSERT INTO metrics (record_id, name, unit, higher_is_better, mean, stddev, n) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    &[
                        id.into(),
                        name.into(),
                        m.unit.as_str().into(),
                        i64::from(m.higher_is_better).into(),
                        m.mean.into(),
                        m.stddev.into(),
                        (m.n as i64).into(),
                    ],
                )?;
                for (i, s) in m.samples.iter().enumerate().filter(|(_, s)| s.is_finite()) {
                    c.execute(
                        "INSERT INTO samples (record_id, metric, idx, value) VALUES (?, ?, ?, ?)",
                        &[id.into(), name.into(), (i as i64).into(), (*s).into()],
                    )?;
                }
            }
            if let Some(t) = telemetry {
                c.execute("INSERT INTO telemetry (record_id, summary) VALUES (?, ?)", &[id.into(), t.into()])?;
            }
            Ok(id)
        })
    }

    /// The runs matching the filter's run-level keys, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn runs(&self, filter: &Filter) -> Result<Vec<Run>, StoreError> {
        let all = self.load_runs()?;
        Ok(all.into_values().filter(|r| filter.matches_run(r)).collect())
    }

    fn load_runs(&self) -> Result<BTreeMap<i64, Run>, StoreError> {
        let rows = self.lock().query(
            "SELECT r.id, r.kind, r.source, r.label, r.started_at, r.stored_at, r.benchkit_version, r.build_commit, r.build_number, r.machine, r.host, r.provenance, r.status, r.error,
                    (SELECT count(*) FROM records x WHERE x.run_id = r.id)
             FROM runs r ORDER BY r.id",
            &[],
        )?;
        let mut out = BTreeMap::new();
        for r in rows {
            let id = r[0].int();
            let provenance = serde_json::from_str(&r[11].string()).unwrap_or(serde_json::Value::Null);
            out.insert(
                id,
                Run {
                    id: RunId(id),
                    stored_at: r[5].string(),
                    n_records: r[14].int() as u64,
                    meta: RunMeta {
                        kind: r[1].string(),
                        source: r[2].string(),
                        label: r[3].text(),
                        started_at: r[4].string(),
                        benchkit_version: r[6].text(),
                        build_commit: r[7].string(),
                        build_number: r[8].int() as u64,
                        machine: r[9].string(),
                        host: r[10].text(),
                        provenance,
                        status: r[12].string(),
                        error: r[13].text(),
                    },
                },
            );
        }
        Ok(out)
    }

    /// Every record matching the filter, in run then record order.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn entries(&self, filter: &Filter) -> Result<Vec<Entry>, StoreError> {
        let runs: BTreeMap<i64, std::sync::Arc<Run>> = self
            .load_runs()?
            .into_iter()
            .filter(|(_, r)| filter.matches_run(r))
            .map(|(id, r)| (id, std::sync::Arc::new(r)))
            .collect();
        let mut c = self.lock();
        let mut records: BTreeMap<i64, Entry> = BTreeMap::new();
        for r in c.query(
            "SELECT id, run_id, seq, kind, name, model, status, error, result FROM records ORDER BY run_id, seq",
            &[],
        )? {
            let Some(run) = runs.get(&r[1].int()) else { continue };
            records.insert(
                r[0].int(),
                Entry {
                    id: r[0].int(),
                    seq: r[2].int(),
                    run: run.clone(),
                    record: StoredRecord {
                        kind: r[3].string(),
                        name: r[4].string(),
                        model: r[5].string(),
                        status: r[6].string(),
                        error: r[7].text(),
                        params: BTreeMap::new(),
                        metrics: BTreeMap::new(),
                        telemetry: None,
                        result: serde_json::from_str(&r[8].string()).unwrap_or(serde_json::Value::Null),
                    },
                },
            );
        }
        for r in c.query("SELECT record_id, name, value FROM params", &[])? {
            if let Some(e) = records.get_mut(&r[0].int()) {
                e.record.params.insert(r[1].string(), r[2].string());
            }
        }
        for r in c.query("SELECT record_id, name, unit, higher_is_better, mean, stddev, n FROM metrics", &[])? {
            if let Some(e) = records.get_mut(&r[0].int()) {
                e.record.metrics.insert(
                    r[1].string(),
                    Metric {
                        unit: r[2].string(),
                        higher_is_better: r[3].int() != 0,
                        mean: r[4].real(),
                        stddev: r[5].real(),
                        n: r[6].int() as u64,
                        samples: Vec::new(),
                    },
                );
            }
        }
        for r in c.query("SELECT record_id, metric, value FROM samples ORDER BY record_id, metric, idx", &[])? {
            if let Some(m) = records.get_mut(&r[0].int()).and_then(|e| e.record.metrics.get_mut(&r[1].string())) {
                m.samples.push(r[2].real().unwrap_or(f64::NAN));
            }
        }
        for r in c.query("SELECT record_id, summary FROM telemetry", &[])? {
            if let Some(e) = records.get_mut(&r[0].int()) {
                e.record.telemetry = serde_json::from_str(&r[1].string()).ok();
            }
        }
        drop(c);
        let mut out: Vec<Entry> = records.into_values().filter(|e| filter.matches(e)).collect();
        out.sort_by_key(|e| (e.run.id, e.seq));
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
