//! The store's schema, as numbered migrations. A store records every migration it has had in
//! `schema_migrations`; opening one written by an older benchkit applies the rest, each in its
//! own transaction. One newer than this benchkit is refused, not guessed at.

use super::conn::{Conn, Dialect, Value};
use super::StoreError;

/// One step of the schema. `{id}` stands for the dialect's auto-increment key.
struct Migration {
    version: i64,
    what: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "runs, records, parameters, metrics, raw samples, telemetry summaries",
        sql: "
CREATE TABLE benchkit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO benchkit_meta (key, value) VALUES ('generation', '0');
CREATE TABLE runs (
    id {id},
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    label TEXT,
    started_at TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    benchkit_version TEXT,
    build_commit TEXT NOT NULL,
    build_number BIGINT NOT NULL,
    machine TEXT NOT NULL,
    host TEXT,
    provenance TEXT NOT NULL
);
CREATE TABLE records (
    id {id},
    run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    result TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    UNIQUE (run_id, seq)
);
CREATE TABLE params (
    record_id BIGINT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (record_id, name)
);
CREATE TABLE metrics (
    record_id BIGINT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    higher_is_better BIGINT NOT NULL,
    mean DOUBLE PRECISION,
    stddev DOUBLE PRECISION,
    n BIGINT NOT NULL,
    PRIMARY KEY (record_id, name)
);
CREATE TABLE samples (
    record_id BIGINT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    idx BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (record_id, metric, idx)
);
CREATE TABLE telemetry (
    record_id BIGINT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    summary TEXT NOT NULL
);
",
    },
    Migration {
        version: 2,
        what: "run status (a commit that failed to build is a run too) and lookup indexes",
        sql: "
ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE runs ADD COLUMN error TEXT;
CREATE INDEX runs_by_commit ON runs (build_commit);
CREATE INDEX records_by_run ON records (run_id);
CREATE INDEX records_by_model ON records (model);
",
    },
];

/// The schema version this benchkit writes.
pub const SCHEMA_VERSION: i64 = 2;

fn id_column(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
    }
}

/// The store's version: 0 for an empty database.
pub(crate) fn version(conn: &mut dyn Conn) -> Result<i64, StoreError> {
    let exists = match conn.dialect() {
        Dialect::Sqlite => conn.query(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            &[],
        )?,
        Dialect::Postgres => conn.query(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'",
            &[],
        )?,
    };
    if exists.first().and_then(|r| r.first()).map_or(0, Value::int) == 0 {
        return Ok(0);
    }
    let rows = conn.query("SELECT max(version) FROM schema_migrations", &[])?;
    Ok(rows.first().and_then(|r| r.first()).map_or(0, Value::int))
}

/// Brings the store up to `target` (at most [`SCHEMA_VERSION`]).
pub(crate) fn migrate(conn: &mut dyn Conn, target: i64) -> Result<i64, StoreError> {
    let mut current = version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { found: current, supported: SCHEMA_VERSION });
    }
    let start = current;
    for m in MIGRATIONS.iter().filter(|m| m.version > start && m.version <= target) {
        conn.begin()?;
        let applied: Result<bool, StoreError> = (|| {
            if conn.dialect() == Dialect::Postgres {
                // PostgreSQL has no lock-the-database `BEGIN`: two processes creating the
                // same tables at once would fail on the catalog, so migrations of one schema
                // take turns on a transaction-scoped advisory lock.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('benchkit-migrate:' || current_schema()))", &[])?;
            }
            // Another process may have migrated while this one waited for the lock.
            if m.version == 1 {
                conn.batch(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL, benchkit_version TEXT NOT NULL, what TEXT NOT NULL)",
                )?;
            }
            if version(conn)? >= m.version {
                return Ok(false);
            }
            conn.batch(&m.sql.replace("{id}", id_column(conn.dialect())))?;
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at, benchkit_version, what) VALUES (?, ?, ?, ?)",
                &[
                    m.version.into(),
                    crate::provenance::rfc3339_now().into(),
                    env!("CARGO_PKG_VERSION").into(),
                    m.what.into(),
                ],
            )?;
            Ok(true)
        })();
        match applied {
            Ok(_) => conn.batch("COMMIT")?,
            Err(e) => {
                let _ = conn.batch("ROLLBACK");
                return Err(StoreError::Migration { version: m.version, reason: e.to_string() });
            }
        }
        current = m.version;
    }
    Ok(current)
}
