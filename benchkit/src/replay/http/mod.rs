//! The OpenAI-compatible HTTP target: streams `/v1/completions` or `/v1/chat/completions`
//! from llama-server, vLLM or any provider and times every generated chunk.
//!
//! All requests share one HTTP/1.1 keep-alive pool (hyper's connection API, each request
//! driving its connection in its own task — see `client.rs` for why; TLS through rustls with
//! the webpki roots plus, optionally, a CA file of your own). The SSE body is decoded
//! incrementally ([`sse::SseDecoder`]) as it arrives, and each event is parsed into a small
//! borrowed struct.
//!
//! Timing (ns after the run start passed to [`Target::send`]):
//! * `sent_ns`: right before the request is handed to the client;
//! * `first_token_ns`: arrival of the first chunk that carries generated text
//!   (`choices[0].text`, `delta.content`, `delta.reasoning_content` or `delta.reasoning`
//!   non-empty) — a role-only or empty chunk is not a token;
//! * `itl_ns`: the gap from each later content chunk to the previous one;
//! * `end_ns`: `data: [DONE]` (or the end of the body / the failure).
//!
//! Token counts: the server's final `usage` when sent ([`TokenCountSource::ServerUsage`]);
//! otherwise the client-side tokenizer over the received text
//! ([`TokenCountSource::ClientTokenizer`]), or, without a tokenizer, one token per content chunk
//! ([`TokenCountSource::ContentChunks`]; exact for llama-server and vLLM, which stream one token
//! per chunk).
//!
//! The API key is read once from the environment variable named in the config, sent as
//! `Authorization: Bearer`, marked sensitive, and never printed (`Debug` redacts it).

mod client;
mod scrape;
pub mod sse;
mod stream;
mod tokenize;

pub use scrape::ScrapeConfig;
pub(crate) use scrape::Scraper;
pub use stream::{read_stream, StreamOutcome};
pub use tokenize::check_tokens;

use super::{Failure, RecordFuture, Request, RequestRecord, Target, TokenCountSource};
use client::{Client, ClientConfig, Origin, TransportError};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::ser::{SerializeMap, Serializer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stream::{StreamReader, StreamState};
use thiserror::Error;

/// A client-side tokenizer: text -> token count.
pub type Tokenizer = Arc<dyn Fn(&str) -> usize + Send + Sync>;

/// Which OpenAI endpoint to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Endpoint {
    /// `/v1/completions` with `prompt` (the messages' contents joined by blank lines, or the
    /// request's token ids when it only has tokens).
    Completions,
    /// `/v1/chat/completions` with `messages`.
    #[default]
    ChatCompletions,
}

/// `completions` or `chat` (`chat-completions` too).
impl std::str::FromStr for Endpoint {
    type Err = crate::ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "completions" => Ok(Endpoint::Completions),
            "chat" | "chat-completions" | "chat_completions" => Ok(Endpoint::ChatCompletions),
            _ => Err(crate::ParseValueError::new("endpoint", s, &["completions", "chat"])),
        }
    }
}

impl Endpoint {
    /// The path under `/v1`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Completions => "completions",
            Endpoint::ChatCompletions => "chat/completions",
        }
    }
}

/// How to reach the server and what to ask of it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HttpTargetConfig {
    /// Server root, e.g. `http://127.0.0.1:8080` (a trailing `/v1` is accepted too).
    pub base_url: String,
    /// Endpoint.
    pub endpoint: Endpoint,
    /// `model` sent in every request.
    pub model: String,
    /// Name of the environment variable holding the API key (`None`: send no key). The key
    /// itself is never stored in the config.
    pub api_key_env: Option<String>,
    /// Limit for a whole request, stream included (a stalled stream fails with
    /// [`Failure::Timeout`]).
    pub request_timeout: Duration,
    /// Send `"ignore_eos": true` (vLLM, llama-server) so every request generates exactly
    /// `output_len` tokens.
    pub ignore_eos: bool,
    /// Extra body fields; they override the built-in ones of the same name.
    pub extra_body: serde_json::Map<String, serde_json::Value>,
    /// Keep the generated text in each record.
    pub keep_text: bool,
    /// At most this many requests on the wire at once (HTTP/1.1: connections); the others wait
    /// for a free one, and are timed as sent when they get it, so the wait shows as schedule
    /// lag. `None`: a connection per request in flight, as vLLM's client does — an overloaded
    /// server or client then makes the pool grow until descriptors run out, where a bound
    /// degrades into queueing instead (aiohttp's `TCPConnector(limit=...)`).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// PEM file of extra CA certificates to trust for `https` (a server with an internal or
    /// self-signed certificate), next to the webpki roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Scrape the server's Prometheus metrics during the run (`None`: do not); the result's
    /// `server_metrics` holds counter deltas and gauge series.
    #[serde(default)]
    pub metrics: Option<ScrapeConfig>,
}

impl HttpTargetConfig {
    /// Defaults for a server at `base_url` serving `model`: chat endpoint, key from
    /// `OPENAI_API_KEY` when set, 10 minute timeout, `ignore_eos`, no extra fields, metrics
    /// scraped from `/metrics` every second.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            endpoint: Endpoint::ChatCompletions,
            model: model.into(),
            api_key_env: Some("OPENAI_API_KEY".to_string()),
            request_timeout: Duration::from_secs(600),
            ignore_eos: true,
            extra_body: serde_json::Map::new(),
            keep_text: false,
            max_connections: None,
            ca_file: None,
            metrics: Some(ScrapeConfig::default()),
        }
    }
}

/// Why an [`HttpTarget`] could not be created.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The base URL does not parse or is not http(s).
    #[error("invalid base URL {url:?}: {detail}")]
    InvalidBaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it (scheme, host, port).
        detail: String,
    },
    /// The API key variable holds a value that cannot be sent in a header (the value is not
    /// shown).
    #[error("the API key in ${env} is not a valid header value")]
    InvalidApiKey {
        /// The variable's name.
        env: String,
    },
    /// A configuration value is out of range.
    #[error("invalid HTTP target configuration: {detail}")]
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
    /// The CA file could not be read or holds no usable certificate.
    #[error("CA file {path}: {detail}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// The read or PEM-parsing error.
        detail: String,
    },
    /// The TLS client could not be configured.
    #[error("TLS setup: {detail}")]
    Tls {
        /// rustls' error.
        detail: String,
    },
}

struct Inner {
    client: Client,
    /// `max_connections` slots.
    slots: Option<tokio::sync::Semaphore>,
    config: HttpTargetConfig,
    tokenizer: Option<Tokenizer>,
}

/// An OpenAI-compatible streaming server as a replay [`Target`].
///
/// [`Target::send`]'s future must run inside a tokio runtime with I/O and time enabled
/// (`Runtime::new`, `#[tokio::main]`, or a builder with `enable_all`). Cloning shares the
/// client and its connection pool.
#[derive(Clone)]
pub struct HttpTarget {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("url", &self.inner.client.origin().url)
            .field("config", &self.inner.config)
            .field("api_key", &"<redacted>")
            .field("tokenizer", &self.inner.tokenizer.is_some())
            .finish()
    }
}

impl HttpTarget {
    /// Creates the target (and its shared client). `tokenizer` counts output tokens when the
    /// server sends no usage. Reads the API key from `config.api_key_env` now; an unset
    /// variable means no `Authorization` header.
    ///
    /// # Errors
    /// [`HttpError::InvalidBaseUrl`], [`HttpError::InvalidApiKey`], [`HttpError::InvalidConfig`]
    /// (`max_connections` of 0), [`HttpError::CaFile`], [`HttpError::Tls`].
    pub fn new(config: HttpTargetConfig, tokenizer: Option<Tokenizer>) -> Result<Self, HttpError> {
        let origin = endpoint_url(&config.base_url, config.endpoint)?;
        let client = client_for(origin, &config)?;
        let slots = match config.max_connections {
            Some(0) => {
                return Err(HttpError::InvalidConfig { detail: "max_connections must be at least 1".to_string() })
            }
            Some(n) => Some(tokio::sync::Semaphore::new(n.min(tokio::sync::Semaphore::MAX_PERMITS))),
            None => None,
        };
        Ok(Self { inner: Arc::new(Inner { client, config, tokenizer, slots }) })
    }

    /// The configuration.
    pub fn config(&self) -> &HttpTargetConfig {
        &self.inner.config
    }

    /// The full endpoint URL requests go to.
    pub fn url(&self) -> &str {
        &self.inner.client.origin().url
    }
}

/// A client for `origin` with the target's key and TLS settings.
fn client_for(origin: Origin, config: &HttpTargetConfig) -> Result<Client, HttpError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(env) = &config.api_key_env {
        if let Some(key) = std::env::var_os(env) {
            let key = key.into_string().map_err(|_| HttpError::InvalidApiKey { env: env.clone() })?;
            if !key.is_empty() {
                let mut v = HeaderValue::try_from(format!("Bearer {key}"))
                    .map_err(|_| HttpError::InvalidApiKey { env: env.clone() })?;
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
        }
    }
    let tls = if origin.tls { Some(tls_config(config.ca_file.as_deref())?) } else { None };
    Client::new(
        origin,
        ClientConfig { headers, connect_timeout: config.request_timeout, idle_timeout: Duration::from_secs(90), tls },
    )
    .map_err(|detail| HttpError::Tls { detail })
}

/// rustls with the webpki roots (and the certificates of `ca_file`), HTTP/1.1 by ALPN.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, HttpError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let bad = |detail: String| HttpError::CaFile { path: path.to_path_buf(), detail };
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(bad("no usable CA certificate in the file".to_string()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls { detail: e.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn endpoint_url(base: &str, endpoint: Endpoint) -> Result<Origin, HttpError> {
    let bad = |detail: String| HttpError::InvalidBaseUrl { url: base.to_string(), detail };
    let trimmed = base.trim_end_matches('/');
    let full = if trimmed.ends_with("/v1") {
        format!("{trimmed}/{}", endpoint.path())
    } else {
        format!("{trimmed}/v1/{}", endpoint.path())
    };
    Origin::parse(&full).map_err(bad)
}

impl Target for HttpTarget {
    fn describe(&self) -> String {
        format!("http:{}", self.inner.client.origin().url)
    }

    fn send(&self, request: Request, start: Instant) -> RecordFuture {
        let inner = self.inner.clone();
        Box::pin(async move { run(&inner, request, start).await })
    }
}

fn ns_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The request body; serialized directly from the request (no intermediate JSON value).
struct Body<'a> {
    config: &'a HttpTargetConfig,
    request: &'a Request,
}

struct Prompt<'a>(&'a Request);

impl serde::Serialize for Prompt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        match (r.messages.as_slice(), &r.prompt_tokens) {
            ([], Some(tokens)) => s.collect_seq(tokens),
            ([one], _) => s.serialize_str(&one.content),
            (many, _) => {
                let mut joined = String::with_capacity(many.iter().map(|m| m.content.len() + 2).sum());
                for (i, m) in many.iter().enumerate() {
                    if i > 0 {
                        joined.push_str("\n\n");
                    }
                    joined.push_str(&m.content);
                }
                s.serialize_str(&joined)
            }
        }
    }
}

impl serde::Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.config;
        let extra = &c.extra_body;
        let mut m = s.serialize_map(None)?;
        // Built-in fields, unless `extra_body` overrides them.
        macro_rules! field {
            ($k:expr, $v:expr) => {
                if !extra.contains_key($k) {
                    m.serialize_entry($k, $v)?;
                }
            };
        }
        field!("model", &c.model);
        match c.endpoint {
            Endpoint::Completions => field!("prompt", &Prompt(self.request)),
            Endpoint::ChatCompletions => field!("messages", &self.request.messages),
        }
        field!("max_tokens", &self.request.output_len);
        field!("stream", &true);
        field!("stream_options", &StreamOptions);
        field!("temperature", &0);
        if c.ignore_eos {
            field!("ignore_eos", &true);
        }
        for (k, v) in extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

struct StreamOptions;

impl serde::Serialize for StreamOptions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("include_usage", &true)?;
        m.end()
    }
}

fn body_bytes(config: &HttpTargetConfig, request: &Request) -> Result<Vec<u8>, serde_json::Error> {
    let prompt_len: usize = request.messages.iter().map(|m| m.content.len() + 40).sum();
    let mut out = Vec::with_capacity(256 + prompt_len + config.model.len());
    serde_json::to_writer(&mut out, &Body { config, request })?;
    Ok(out)
}

async fn run(inner: &Inner, request: Request, start: Instant) -> RequestRecord {
    let config = &inner.config;
    let collect_text = config.keep_text || inner.tokenizer.is_some();
    let mut state = StreamState::new(collect_text, request.output_len);
    let mut sent_ns = None;
    let body = match (config.endpoint, request.messages.is_empty()) {
        (Endpoint::ChatCompletions, true) => Err(Failure::Other {
            detail: "the chat endpoint needs text messages (this request only has token ids)".to_string(),
        }),
        _ => body_bytes(config, &request)
            .map(bytes::Bytes::from)
            .map_err(|e| Failure::Other { detail: format!("encoding the request: {e}") }),
    };
    let outcome = match body {
        Err(f) => Err(f),
        Ok(body) => {
            match tokio::time::timeout(config.request_timeout, exchange(inner, body, &mut state, &mut sent_ns, start))
                .await
            {
                Ok(r) => r,
                // Everything arrived; only the end of the body did not.
                Err(_) if state.done => Ok(()),
                Err(_) => Err(Failure::Timeout),
            }
        }
    };
    let now = ns_since(start);
    let sent_ns = sent_ns.unwrap_or(now);
    let (end_ns, failure) = match outcome {
        Ok(()) => (state.done_ns.unwrap_or(now), None),
        Err(f) => (now, Some(f)),
    };
    let (output_tokens, source) = match state.completion_tokens {
        Some(n) => (n, TokenCountSource::ServerUsage),
        None => match &inner.tokenizer {
            Some(tok) => (u32::try_from(tok(&state.text)).unwrap_or(u32::MAX), TokenCountSource::ClientTokenizer),
            None => (state.content_chunks, TokenCountSource::ContentChunks),
        },
    };
    RequestRecord {
        id: request.id,
        conversation_id: request.conversation_id,
        turn: request.turn,
        warmup: request.warmup,
        scheduled_ns: request.scheduled_ns,
        sent_ns,
        first_token_ns: state.first_token_ns,
        itl_ns: std::mem::take(&mut state.itl_ns),
        end_ns,
        input_tokens: state.prompt_tokens.unwrap_or(request.prompt_len),
        output_tokens,
        output_tokens_source: source,
        failure,
        text: config.keep_text.then(|| std::mem::take(&mut state.text)),
    }
}

/// Failure wrapper so the SSE decoder's errors and the state's failures share one type.
/// Cap on the error body read from a non-2xx response.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Sends the request and reads the stream into `state` (the `[DONE]` time is the end).
async fn exchange(
    inner: &Inner,
    body: bytes::Bytes,
    state: &mut StreamState,
    sent_ns: &mut Option<u64>,
    start: Instant,
) -> Result<(), Failure> {
    // Held until the body has been read: bounds the requests (connections) on the wire.
    let _slot = match &inner.slots {
        Some(s) => {
            Some(s.acquire().await.map_err(|_| Failure::Other { detail: "connection slots closed".to_string() })?)
        }
        None => None,
    };
    *sent_ns = Some(ns_since(start));
    let mut resp = match inner.client.post(body.clone(), false).await {
        Ok(r) => r,
        // A kept-alive connection that the server closed between two requests (llama-server
        // does) fails before anything was exchanged: that is no server failure, so the request
        // is sent once more on a fresh connection, and timed from then.
        Err(e) if e.stale => {
            *sent_ns = Some(ns_since(start));
            inner.client.post(body, true).await.map_err(transport_failure)?
        }
        Err(e) => return Err(transport_failure(e)),
    };
    let status = resp.status;
    if !status.is_success() {
        let mut buf = Vec::new();
        while buf.len() < MAX_ERROR_BODY {
            match resp.chunk().await {
                Ok(Some(c)) => buf.extend_from_slice(&c),
                _ => break,
            }
        }
        return Err(stream::classify_status(status.as_u16(), &buf));
    }
    let mut reader = StreamReader::new(state);
    loop {
        let piece = match resp.chunk().await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                if reader.state().complete() {
                    break; // the server closed abruptly after finishing
                }
                return Err(transport_failure(e));
            }
        };
        reader.piece(&piece, ns_since(start))?;
    }
    reader.end(ns_since(start))
}

/// Maps a transport error (connect, TLS, reset, closed mid-body) to a [`Failure`].
fn transport_failure(e: TransportError) -> Failure {
    Failure::Connection { detail: e.detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::ChatMessage;

    fn req(messages: Vec<ChatMessage>, tokens: Option<Vec<i32>>) -> Request {
        Request { prompt_tokens: tokens, ..Request::chat(1, messages, 3, 5) }
    }

    #[test]
    fn bodies() {
        let mut c = HttpTargetConfig::new("http://h:1/v1/", "m");
        c.extra_body.insert("temperature".into(), serde_json::json!(0.7));
        c.extra_body.insert("top_k".into(), serde_json::json!(1));
        let msg = vec![ChatMessage { role: "user".into(), content: "a\"b".into() }];
        let v: serde_json::Value = serde_json::from_slice(&body_bytes(&c, &req(msg.clone(), None)).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "a\"b"}], "max_tokens": 5,
                "stream": true, "stream_options": {"include_usage": true}, "ignore_eos": true,
                "temperature": 0.7, "top_k": 1})
        );
        c.endpoint = Endpoint::Completions;
        c.ignore_eos = false;
        let v: serde_json::Value =
            serde_json::from_slice(&body_bytes(&c, &req(vec![], Some(vec![1, 2]))).unwrap()).unwrap();
        assert_eq!(v["prompt"], serde_json::json!([1, 2]));
        assert!(v.get("ignore_eos").is_none());
        let two = vec![msg[0].clone(), ChatMessage { role: "assistant".into(), content: "c".into() }];
        let v: serde_json::Value = serde_json::from_slice(&body_bytes(&c, &req(two, None)).unwrap()).unwrap();
        assert_eq!(v["prompt"], "a\"b\n\nc");
    }

    #[test]
    fn urls() {
        assert_eq!(endpoint_url("http://h:1", Endpoint::Completions).unwrap().url, "http://h:1/v1/completions");
        assert_eq!(
            endpoint_url("https://h/v1", Endpoint::ChatCompletions).unwrap().url,
            "https://h/v1/chat/completions"
        );
        let v6 = endpoint_url("http://[::1]:8080/", Endpoint::Completions).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
        assert_eq!(endpoint_url("https://example.org", Endpoint::Completions).unwrap().port, 443);
        assert!(matches!(endpoint_url("ftp://h", Endpoint::Completions), Err(HttpError::InvalidBaseUrl { .. })));
        assert!(matches!(endpoint_url("not a url", Endpoint::Completions), Err(HttpError::InvalidBaseUrl { .. })));
    }
}
