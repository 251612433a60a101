//! `benchkit results serve`: the results store, read-only, over HTTP with an API key.
//!
//! Endpoints (all `GET`, all JSON, all behind the `x-api-key` header unless the server was
//! started without authentication on purpose):
//!
//! - `/api/v1/benchmarks/rankings[?by=model|build|machine&filter=k=v,...]`: every metric's
//!   rankings in llm-benchmark's shape, `{"data": [{"ttft": [{"llm_name", "mean_value", ...}]}, ...]}`
//!   ([`crate::store::rankings::llm_benchmark_json`]);
//! - `/api/v1/benchmarks/rankings/{metric}`: one metric's (`ttft`, `tpot`, `e2e`, `rps`, `pp`,
//!   `tg`, `ppl`, `j_per_token`), the same shape;
//! - `/api/v1/runs[?filter=...]`: `{"data": [run, ...]}`;
//! - `/api/v1/runs/{id}`: `{"run": run, "records": [record, ...]}`;
//! - `/api/v1/records[?filter=...]`: `{"data": [entry, ...]}`.
//!
//! Errors are `{"error": "..."}` with 400 (a bad filter or grouping), 401 (no or wrong key),
//! 404 (an unknown metric, run or path) or 500 (the store failed).
//!
//! The key is kept only as its SHA-256 digest and compared in constant time; it is never
//! logged nor put in an error. Answers are cached until the store's generation moves, which
//! every write does, so a server over a store that a sweep is filling answers fresh results.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::rankings::{self, RankBy, RankMetric};
use crate::store::{Entry, Filter, RunId, Store, StoreError};

/// The environment variable the API key is read from unless another is named.
pub const DEFAULT_KEY_ENV: &str = "BENCHKIT_API_KEY";

/// Where the server listens unless told: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8088";

/// The header that carries the key.
pub const KEY_HEADER: &str = "x-api-key";

/// Cached answers per store generation: distinct queries beyond this start the cache afresh
/// (a client sweeping filters must not grow the server without bound).
const MAX_CACHED: usize = 256;

/// Why the server cannot start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No key in the environment and no explicit `--no-auth`.
    #[error("no API key: set the environment variable {var} (or name another with --api-key-env), or pass --no-auth to serve without authentication")]
    NoKey {
        /// The variable that was read.
        var: String,
    },
    /// A key that cannot be one (empty, or not text); the key itself is not shown.
    #[error("the API key in {var} is unusable: {reason}")]
    BadKey {
        /// The variable that was read.
        var: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A listen address other hosts can reach, without `--allow-remote`.
    #[error("{0} is not a loopback address: pass --allow-remote to serve other hosts")]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime or the server failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// An API key, kept only as its SHA-256 digest: comparing digests takes the same time whatever
/// the presented key's length and content.
#[derive(Clone)]
pub struct ApiKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl ApiKey {
    /// The key in the environment variable `var`.
    ///
    /// # Errors
    /// [`ServeError::NoKey`] when it is not set, [`ServeError::BadKey`] when it is empty, not
    /// UTF-8, or has characters no HTTP header value can carry.
    pub fn from_env(var: &str) -> Result<Self, ServeError> {
        let bad = |reason| ServeError::BadKey { var: var.to_string(), reason };
        let value = std::env::var_os(var).ok_or_else(|| ServeError::NoKey { var: var.to_string() })?;
        let text = value.into_string().map_err(|_| bad("it is not UTF-8"))?;
        Self::new(&text).ok_or_else(|| {
            if text.trim().is_empty() {
                bad("it is empty")
            } else {
                bad("it has characters an x-api-key header cannot carry (control characters or non-ASCII)")
            }
        })
    }

    /// A key from its text; `None` when it is blank or has characters that a header value
    /// cannot carry (no client could ever present it).
    pub fn new(key: &str) -> Option<Self> {
        let usable = !key.trim().is_empty() && key.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
        usable.then(|| ApiKey { digest: sha256(key.as_bytes()) })
    }

    /// Whether `presented` is the key, in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        sha256(presented).ct_eq(&self.digest).into()
    }
}

/// Who may read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Auth {
    /// Requests that carry the key in `x-api-key`.
    Key(ApiKey),
    /// Everyone (`--no-auth`, given explicitly).
    Open,
}

/// What `benchkit results serve` serves, where and to whom.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The store: a path or a `postgres://` URL.
    pub store: String,
    /// The address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// The key, or no authentication.
    pub auth: Auth,
    /// Whether a non-loopback address is allowed.
    pub allow_remote: bool,
}

/// Refuses an address other hosts can reach unless `allow_remote`.
///
/// # Errors
/// [`ServeError::NotLoopback`].
pub fn check_listen(addr: SocketAddr, allow_remote: bool) -> Result<(), ServeError> {
    if addr.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(ServeError::NotLoopback(addr))
    }
}

/// A cached answer.
#[derive(Clone)]
struct Answer {
    status: StatusCode,
    body: Bytes,
}

#[derive(Default)]
struct Cache {
    /// The store generation the rest was computed at.
    generation: Option<i64>,
    entries: Option<Arc<Vec<Entry>>>,
    answers: HashMap<String, Answer>,
}

struct AppState {
    store: Arc<Store>,
    auth: Auth,
    cache: Mutex<Cache>,
}

impl AppState {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache is rebuilt from the store whenever in doubt; a panic mid-update leaves at
        // worst a stale generation, which the next request replaces.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every entry at `generation`, loaded once per generation.
    fn entries(&self, generation: i64) -> Result<Arc<Vec<Entry>>, StoreError> {
        let cached = {
            let c = self.cache();
            c.entries.clone().filter(|_| c.generation == Some(generation))
        };
        if let Some(e) = cached {
            return Ok(e);
        }
        let loaded = Arc::new(self.store.entries(&Filter::all())?);
        let mut c = self.cache();
        if c.generation == Some(generation) {
            c.entries = Some(loaded.clone());
        }
        Ok(loaded)
    }
}

/// An error answer: `{"error": message}`.
fn error(status: StatusCode, message: impl std::fmt::Display) -> (StatusCode, serde_json::Value) {
    (status, serde_json::json!({ "error": message.to_string() }))
}

fn respond(a: Answer) -> Response {
    let mut r = Response::new(Body::from(a.body));
    *r.status_mut() = a.status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r
}

fn to_answer((status, value): (StatusCode, serde_json::Value)) -> Answer {
    // serde_json writes every Value (non-finite numbers as null).
    Answer { status, body: Bytes::from(serde_json::to_vec(&value).unwrap_or_default()) }
}

type Compute = Box<dyn FnOnce(&AppState, i64) -> (StatusCode, serde_json::Value) + Send>;

/// The answer for `key` (the request's path and query) at the store's current generation:
/// cached, or computed on a blocking thread (the store is synchronous) and cached.
async fn answer(state: Arc<AppState>, key: String, compute: Compute) -> Response {
    let work = move || {
        let generation = match state.store.generation() {
            Ok(g) => g,
            Err(e) => return to_answer(error(StatusCode::INTERNAL_SERVER_ERROR, e)),
        };
        {
            let mut c = state.cache();
            if c.generation != Some(generation) {
                *c = Cache { generation: Some(generation), ..Cache::default() };
            }
            if let Some(a) = c.answers.get(&key) {
                return a.clone();
            }
        }
        let a = to_answer(compute(&state, generation));
        // Store failures are not cached: the next request tries again.
        if a.status != StatusCode::INTERNAL_SERVER_ERROR {
            let mut c = state.cache();
            if c.generation == Some(generation) {
                if c.answers.len() >= MAX_CACHED {
                    c.answers.clear();
                }
                c.answers.insert(key, a.clone());
            }
        }
        a
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(a) => respond(a),
        Err(e) => respond(to_answer(error(StatusCode::INTERNAL_SERVER_ERROR, format!("request failed: {e}")))),
    }
}

fn cache_key(uri: &Uri) -> String {
    uri.path_and_query().map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string())
}

/// The `filter` and `by` query parameters.
fn filter_of(q: &HashMap<String, String>) -> Result<Filter, (StatusCode, serde_json::Value)> {
    Filter::parse(q.get("filter").map_or("", String::as_str)).map_err(|e| error(StatusCode::BAD_REQUEST, e))
}

fn by_of(q: &HashMap<String, String>) -> Result<RankBy, (StatusCode, serde_json::Value)> {
    q.get("by").map_or(Ok(RankBy::Model), |b| b.parse().map_err(|e| error(StatusCode::BAD_REQUEST, e)))
}

fn rankings_answer(
    state: &AppState,
    generation: i64,
    metrics: &[RankMetric],
    q: &HashMap<String, String>,
) -> (StatusCode, serde_json::Value) {
    let (filter, by) = match (filter_of(q), by_of(q)) {
        (Ok(f), Ok(b)) => (f, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let entries = match state.entries(generation) {
        Ok(e) => e,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let selected: Vec<Entry>;
    let entries: &[Entry] = if filter.is_empty() {
        &entries
    } else {
        selected = entries.iter().filter(|e| filter.matches(e)).cloned().collect();
        &selected
    };
    let sets: Vec<_> = metrics.iter().map(|&m| (m, rankings::rankings(entries, m, by))).collect();
    (StatusCode::OK, rankings::llm_benchmark_json(&sets))
}

async fn all_rankings(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let compute: Compute = Box::new(move |s, g| rankings_answer(s, g, &RankMetric::ALL, &q));
    answer(state, cache_key(&uri), compute).await
}

async fn metric_rankings(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    Path(metric): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let compute: Compute = Box::new(move |s, g| match metric.parse::<RankMetric>() {
        Ok(m) => rankings_answer(s, g, &[m], &q),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    });
    answer(state, cache_key(&uri), compute).await
}

fn json_of<T: serde::Serialize>(v: &T) -> (StatusCode, serde_json::Value) {
    match serde_json::to_value(v) {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn runs(State(state): State<Arc<AppState>>, uri: Uri, Query(q): Query<HashMap<String, String>>) -> Response {
    let compute: Compute = Box::new(move |s, _| {
        let filter = match filter_of(&q) {
            Ok(f) => f,
            Err(e) => return e,
        };
        match s.store.runs(&filter) {
            Ok(runs) => json_of(&serde_json::json!({ "data": runs })),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    });
    answer(state, cache_key(&uri), compute).await
}

async fn run(State(state): State<Arc<AppState>>, uri: Uri, Path(id): Path<String>) -> Response {
    let compute: Compute = Box::new(move |s, g| {
        let Ok(id) = id.trim().parse::<i64>() else { return error(StatusCode::NOT_FOUND, format!("no run {id:?}")) };
        let runs = match s.store.runs(&Filter::all()) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
        };
        let Some(run) = runs.into_iter().find(|r| r.id == RunId(id)) else {
            return error(StatusCode::NOT_FOUND, StoreError::NoRun(id));
        };
        let entries = match s.entries(g) {
            Ok(e) => e,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
        };
        // The records without their run, which the answer has once, with their ids.
        let records: Vec<serde_json::Value> = entries
            .iter()
            .filter(|e| e.run.id == run.id)
            .map(|e| {
                let mut v = serde_json::to_value(&e.record).unwrap_or(serde_json::Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert("id".into(), e.id.into());
                    o.insert("seq".into(), e.seq.into());
                }
                v
            })
            .collect();
        json_of(&serde_json::json!({ "run": run, "records": records }))
    });
    answer(state, cache_key(&uri), compute).await
}

async fn records(State(state): State<Arc<AppState>>, uri: Uri, Query(q): Query<HashMap<String, String>>) -> Response {
    let compute: Compute = Box::new(move |s, g| {
        let filter = match filter_of(&q) {
            Ok(f) => f,
            Err(e) => return e,
        };
        match s.entries(g) {
            Ok(entries) => {
                let selected: Vec<&Entry> = entries.iter().filter(|e| filter.matches(e)).collect();
                json_of(&serde_json::json!({ "data": selected }))
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    });
    answer(state, cache_key(&uri), compute).await
}

async fn not_found(uri: Uri) -> Response {
    respond(to_answer(error(StatusCode::NOT_FOUND, format!("no endpoint {}", uri.path()))))
}

/// Lets a request through only with the key (every path: unknown ones answer 401 too, so that
/// the API's shape is not probed without it).
async fn require_key(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Auth::Key(key) = &state.auth {
        let refused = match req.headers().get(KEY_HEADER) {
            None => Some("missing x-api-key header"),
            Some(v) if !key.matches(v.as_bytes()) => Some("invalid API key"),
            Some(_) => None,
        };
        if let Some(why) = refused {
            return respond(to_answer(error(StatusCode::UNAUTHORIZED, why)));
        }
    }
    next.run(req).await
}

/// The API over `store` as an axum router.
pub fn router(store: Arc<Store>, auth: Auth) -> Router {
    let state = Arc::new(AppState { store, auth, cache: Mutex::new(Cache::default()) });
    Router::new()
        .route("/api/v1/benchmarks/rankings", get(all_rankings))
        .route("/api/v1/benchmarks/rankings/{metric}", get(metric_rankings))
        .route("/api/v1/runs", get(runs))
        .route("/api/v1/runs/{id}", get(run))
        .route("/api/v1/records", get(records))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_key))
        .with_state(state)
}

/// Serves `config.store` read-only until the process ends; `on_listening` is told the bound
/// address (the port when 0 was asked for) before the first request is taken.
///
/// # Errors
/// [`ServeError::NotLoopback`] (checked first), [`ServeError::Store`] when the store cannot be
/// opened read-only, [`ServeError::Bind`], [`ServeError::Io`].
pub fn serve(config: ServeConfig, on_listening: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    check_listen(config.listen, config.allow_remote)?;
    let store = Arc::new(Store::open_read_only(&config.store)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind { addr: config.listen, source })?;
        on_listening(listener.local_addr()?);
        axum::serve(listener, router(store, config.auth)).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_by_digest_and_never_print() {
        let k = ApiKey::new("s3cret-key").unwrap();
        assert!(k.matches(b"s3cret-key"));
        assert!(!k.matches(b"s3cret-kez"));
        assert!(!k.matches(b""));
        assert!(!format!("{k:?}").contains("s3cret"));
        assert!(ApiKey::new("  ").is_none());
        assert!(ApiKey::new("a\nb").is_none());
    }

    #[test]
    fn missing_keys_are_clear_errors_without_the_key() {
        let var = "BENCHKIT_TEST_SERVE_KEY_THAT_IS_NOT_SET";
        let e = ApiKey::from_env(var).unwrap_err();
        assert!(matches!(&e, ServeError::NoKey { var: v } if v == var));
        assert!(e.to_string().contains("--no-auth"));
    }

    #[test]
    fn only_loopback_without_allow_remote() {
        assert!(check_listen("127.0.0.1:0".parse().unwrap(), false).is_ok());
        assert!(check_listen("[::1]:8088".parse().unwrap(), false).is_ok());
        assert!(matches!(check_listen("0.0.0.0:8088".parse().unwrap(), false), Err(ServeError::NotLoopback(_))));
        assert!(check_listen("0.0.0.0:8088".parse().unwrap(), true).is_ok());
        assert!(check_listen(DEFAULT_LISTEN.parse().unwrap(), false).is_ok());
    }
}
