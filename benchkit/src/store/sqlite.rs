//! The embedded default: one SQLite file (rusqlite, bundled).

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};

use super::conn::{Conn, Dialect, Value};
use super::StoreError;

pub(crate) struct Sqlite {
    conn: rusqlite::Connection,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl Sqlite {
    pub(crate) fn open(path: &Path, read_only: bool) -> Result<Self, StoreError> {
        use rusqlite::OpenFlags;
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        if read_only && !path.exists() {
            return Err(StoreError::NotFound(path.to_path_buf()));
        }
        let conn = rusqlite::Connection::open_with_flags(path, flags)
            .map_err(|e| StoreError::Open { store: path.display().to_string(), reason: e.to_string() })?;
        // Several processes (a sweep, a server reading it) share one file: WAL lets readers go
        // on while a record is written, and the busy timeout queues writers.
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        if !read_only {
            conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        }
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        // A file that is not a database says so here, not at the first query.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())).map_err(|e| StoreError::Open {
            store: path.display().to_string(),
            reason: format!("not a benchkit store (SQLite: {e})"),
        })?;
        Ok(Sqlite { conn })
    }
}

fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Real(r) => SqlValue::Real(*r),
        Value::Text(s) => SqlValue::Text(s.clone()),
    }
}

impl Conn for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(err)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let n = stmt.execute(rusqlite::params_from_iter(params.iter().map(to_sql))).map_err(err)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(to_sql))).map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mut r = Vec::with_capacity(n);
            for i in 0..n {
                r.push(match row.get_ref(i).map_err(err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                });
            }
            out.push(r);
        }
        Ok(out)
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(err)
    }
}
