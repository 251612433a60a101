//! The shared store on PostgreSQL (`postgres://...`), for many machines writing to one place.
//! The synchronous `postgres` client (pure Rust, no libpq).

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, NoTls};

use super::conn::{numbered_placeholders, Conn, Dialect, Value};
use super::StoreError;

pub(crate) struct Postgres {
    client: Client,
}

fn err(e: postgres::Error) -> StoreError {
    StoreError::Database(describe(&e))
}

/// The server's message: the client's own `Display` says only "db error".
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut s = format!("{} (SQLSTATE {})", d.message(), d.code().code());
            if let Some(detail) = d.detail() {
                s.push_str(": ");
                s.push_str(detail);
            }
            s
        }
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl Postgres {
    pub(crate) fn open(url: &str, read_only: bool) -> Result<Self, StoreError> {
        let refused = |e: postgres::Error| StoreError::Open { store: super::redact_url(url), reason: describe(&e) };
        let mut client = Client::connect(url, NoTls).map_err(refused)?;
        if read_only {
            // The server, not only benchkit's code, refuses writes on a reader's connection
            // (`results serve` is exposed to the network).
            client.batch_execute("SET default_transaction_read_only = on").map_err(refused)?;
        }
        Ok(Postgres { client })
    }
}

/// A [`Value`] bound to whatever type the server inferred for its parameter.
#[derive(Debug)]
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // The binary protocol takes each type's own encoding: a value written in another
        // type's bytes would be misread, not refused, so every pairing is explicit.
        let int = |v: i64, out: &mut bytes::BytesMut| -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            match *ty {
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                _ => v.to_string().to_sql(ty, out),
            }
        };
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => int(*v, out),
            Value::Real(v) => match *ty {
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::INT2 | Type::INT4 | Type::INT8 if v.fract() == 0.0 => int(*v as i64, out),
                Type::INT2 | Type::INT4 | Type::INT8 => Err(format!("{v} is not an integer ({ty})").into()),
                _ => v.to_string().to_sql(ty, out),
            },
            Value::Text(s) => match *ty {
                Type::INT2 | Type::INT4 | Type::INT8 => int(s.trim().parse()?, out),
                Type::FLOAT4 => s.trim().parse::<f32>()?.to_sql(ty, out),
                Type::FLOAT8 => s.trim().parse::<f64>()?.to_sql(ty, out),
                _ => s.to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn column(row: &postgres::Row, i: usize) -> Result<Value, StoreError> {
    let ty = row.columns()[i].type_().clone();
    let v = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(|v| Value::Int(v.into()))),
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map(|v| Value::Int(v.into()))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real)),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map(|v| v.map(|v| Value::Real(v.into()))),
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map(|v| v.map(|v| Value::Int(v.into()))),
        _ => row.try_get::<_, Option<String>>(i).map(|v| v.map(Value::Text)),
    };
    Ok(v.map_err(err)?.unwrap_or(Value::Null))
}

impl Conn for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(err)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let ps: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = ps.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        self.client.execute(numbered_placeholders(sql).as_str(), &refs).map_err(err)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError> {
        let ps: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = ps.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(numbered_placeholders(sql).as_str(), &refs).map_err(err)?;
        rows.iter().map(|row| (0..row.len()).map(|i| column(row, i)).collect()).collect()
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.client.batch_execute("BEGIN").map_err(err)
    }
}
