//! The little SQL both databases share: `?` placeholders, four value types, a transaction.
//! SQLite and PostgreSQL each implement [`Conn`]; everything above it is written once.

use super::StoreError;

/// A column value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    pub(crate) fn int(&self) -> i64 {
        match self {
            Value::Int(v) => *v,
            Value::Real(v) => *v as i64,
            Value::Text(s) => s.parse().unwrap_or(0),
            Value::Null => 0,
        }
    }

    pub(crate) fn real(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Real(v) => Some(*v),
            Value::Text(s) => s.parse().ok(),
            Value::Null => None,
        }
    }

    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s.clone()),
            Value::Int(v) => Some(v.to_string()),
            Value::Real(v) => Some(v.to_string()),
            Value::Null => None,
        }
    }

    /// Text, or "" for NULL.
    pub(crate) fn string(&self) -> String {
        self.text().unwrap_or_default()
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        if v.is_finite() {
            Value::Real(v)
        } else {
            Value::Null
        }
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Which database: the schema's few differences (auto-increment keys) depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection to one database.
pub(crate) trait Conn: Send {
    fn dialect(&self) -> Dialect;
    /// Statements without parameters, `;`-separated.
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// One statement; rows changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    /// One query; its rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError>;
    /// Starts a write transaction (SQLite takes the write lock at once, so two writers queue
    /// instead of failing on upgrade).
    fn begin(&mut self) -> Result<(), StoreError>;
}

/// `?` placeholders as PostgreSQL's `$1, $2, ...` (benchkit's SQL has no `?` in literals).
#[cfg(any(feature = "postgres", test))]
pub(crate) fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(super::numbered_placeholders("a = ? AND b IN (?, ?)"), "a = $1 AND b IN ($2, $3)");
    }
}
