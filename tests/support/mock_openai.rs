//! A fault-injecting mock of an OpenAI-compatible streaming server, for tests only.
//!
//! A hand-rolled HTTP/1.1 loop (keep-alive, chunked responses) on 127.0.0.1:0. The behaviour
//! of each request is chosen by a marker anywhere in its body: `mock:<behaviour>` (see
//! [`Behaviour`]); without a marker the request gets a normal stream. A normal stream sends
//! `max_tokens` content chunks (`"tok "`), a role-only first chunk on the chat endpoint, a
//! `finish_reason`, a final `usage` chunk and `data: [DONE]`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Stream with usage.
    Normal,
    /// Role-only chunk, then [`ROLE_DELAY`], then content.
    RoleDelay,
    /// Stream without a usage chunk.
    NoUsage,
    /// `[TOKEN_DELAY]` between content chunks.
    TokenDelay,
    /// Every SSE event split into pieces written separately, CRLF line endings.
    SplitCrlf,
    /// A complete stream through `data: [DONE]`, but the body is never terminated (the
    /// connection stalls for 30 s).
    DoneStall,
    /// HTTP 500.
    Http500,
    /// HTTP 429.
    Http429,
    /// One content chunk, then silence for 30 s.
    Stall,
    /// Two content chunks, then the connection is closed mid-body.
    Drop,
    /// `data: {not json`.
    Malformed,
    /// A content chunk, then an error event.
    ErrorEvent,
    /// HTTP 400 with llama-server's context-size error.
    ContextExceeded,
}

/// Delay between the role chunk and the first content chunk ([`Behaviour::RoleDelay`]).
pub const ROLE_DELAY: Duration = Duration::from_millis(120);
/// Delay between content chunks ([`Behaviour::TokenDelay`]).
pub const TOKEN_DELAY: Duration = Duration::from_millis(15);

impl Behaviour {
    /// Every behaviour.
    pub const ALL: [Behaviour; 13] = [
        Behaviour::Normal,
        Behaviour::RoleDelay,
        Behaviour::NoUsage,
        Behaviour::TokenDelay,
        Behaviour::SplitCrlf,
        Behaviour::DoneStall,
        Behaviour::Http500,
        Behaviour::Http429,
        Behaviour::Stall,
        Behaviour::Drop,
        Behaviour::Malformed,
        Behaviour::ErrorEvent,
        Behaviour::ContextExceeded,
    ];

    /// The marker that selects it.
    pub fn marker(self) -> &'static str {
        match self {
            Behaviour::Normal => "mock:normal",
            Behaviour::RoleDelay => "mock:role_delay",
            Behaviour::NoUsage => "mock:no_usage",
            Behaviour::TokenDelay => "mock:token_delay",
            Behaviour::SplitCrlf => "mock:split_crlf",
            Behaviour::DoneStall => "mock:done_stall",
            Behaviour::Http500 => "mock:http500",
            Behaviour::Http429 => "mock:http429",
            Behaviour::Stall => "mock:stall",
            Behaviour::Drop => "mock:drop",
            Behaviour::Malformed => "mock:malformed",
            Behaviour::ErrorEvent => "mock:error_event",
            Behaviour::ContextExceeded => "mock:context",
        }
    }

    fn from_body(body: &[u8]) -> Behaviour {
        let Some(i) = find(body, b"mock:") else { return Behaviour::Normal };
        let rest = &body[i..];
        Behaviour::ALL
            .into_iter()
            .find(|b| {
                let m = b.marker().as_bytes();
                rest.starts_with(m) && !rest.get(m.len()).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            })
            .unwrap_or(Behaviour::Normal)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Content chunks sent in streams that completed with `[DONE]`.
    pub completed_tokens: AtomicU64,
    /// `Authorization` header of the last request.
    pub last_authorization: Mutex<Option<String>>,
    /// Body of the last request (raw bytes).
    pub last_body: Mutex<Vec<u8>>,
    /// `GET /metrics` requests (the second one answers 500).
    pub scrapes: AtomicU64,
    /// `POST /tokenize` requests.
    pub tokenize_requests: AtomicU64,
    /// Answer `/tokenize` with 404, as a server without it.
    pub no_tokenize: std::sync::atomic::AtomicBool,
}

/// A running mock server (stops accepting when dropped).
pub struct MockServer {
    /// Bound address.
    pub addr: SocketAddr,
    /// Counters.
    pub stats: Arc<Stats>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl MockServer {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime.
    pub async fn start() -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let stats = Arc::new(Stats::default());
        let s = stats.clone();
        let accept = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::Relaxed);
                let _ = sock.set_nodelay(true);
                tokio::spawn(serve(sock, s.clone()));
            }
        });
        MockServer { addr, stats, accept }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

struct Parsed {
    path: String,
    body: Vec<u8>,
    close: bool,
}

/// Reads one request; `None` at EOF or on garbage.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>, stats: &Stats) -> Option<Parsed> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let mut tmp = [0u8; 8192];
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?.to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let mut len = 0usize;
    let mut close = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { continue };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        match k.as_str() {
            "content-length" => len = v.parse().ok()?,
            "connection" => close = v.eq_ignore_ascii_case("close"),
            "authorization" => *stats.last_authorization.lock().unwrap() = Some(v.to_string()),
            _ => {}
        }
    }
    while buf.len() < head_end + len {
        let mut tmp = [0u8; 8192];
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(Parsed { path, body, close })
}

/// The unsigned integer after `key` (e.g. `"max_tokens":`) in a compact JSON body.
fn json_u64(body: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(body, key)? + key.len();
    let digits: Vec<u8> =
        body[at..].iter().copied().skip_while(|c| *c == b' ').take_while(u8::is_ascii_digit).collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn event(out: &mut Vec<u8>, json: &str, crlf: bool) {
    let nl = if crlf { "\r\n" } else { "\n" };
    chunk(out, format!("data: {json}{nl}{nl}").as_bytes());
}

fn content_json(chat: bool, text: &str, finish: bool) -> String {
    let fr = if finish { "\"length\"" } else { "null" };
    if chat {
        format!(
            r#"{{"id":"x","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"{text}"}},"finish_reason":{fr}}}]}}"#
        )
    } else {
        format!(
            r#"{{"id":"x","object":"text_completion","choices":[{{"index":0,"text":"{text}","finish_reason":{fr}}}]}}"#
        )
    }
}

const ROLE_JSON: &str = r#"{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}"#;

const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

async fn plain(sock: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let r =
        format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    sock.write_all(r.as_bytes()).await
}

/// Prometheus text: a counter of completed tokens, a gauge, and a line that is no metric; the
/// second scrape fails with HTTP 500.
async fn metrics(sock: &mut TcpStream, stats: &Stats) -> std::io::Result<()> {
    if stats.scrapes.fetch_add(1, Ordering::Relaxed) == 1 {
        return plain(sock, "500 Internal Server Error", "metrics exploded").await;
    }
    let body = format!(
        "# HELP mock:tokens_predicted_total Generated tokens\n# TYPE mock:tokens_predicted_total counter\n\
         mock:tokens_predicted_total {}\n# TYPE mock:requests_seen gauge\nmock:requests_seen {}\n\
         this line is not a metric\n",
        stats.completed_tokens.load(Ordering::Relaxed),
        stats.requests.load(Ordering::Relaxed)
    );
    let r = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(r.as_bytes()).await
}

/// The token count the mock's `/tokenize` gives a prompt: its length in bytes (no real
/// tokenizer agrees on ordinary text, so a test can expect disagreements).
pub fn mock_token_count(prompt: &str) -> usize {
    prompt.len()
}

/// vLLM's `/tokenize`: `{"prompt": ...}` gives `{"count", "tokens", "max_model_len"}`; a body
/// without `prompt` (llama.cpp's `content`) is a 400 validation error, as vLLM answers it.
/// With [`Stats::no_tokenize`]: 404.
async fn tokenize(sock: &mut TcpStream, body: &[u8], stats: &Stats) -> std::io::Result<()> {
    stats.tokenize_requests.fetch_add(1, Ordering::Relaxed);
    if stats.no_tokenize.load(Ordering::Relaxed) {
        return plain(sock, "404 Not Found", r#"{"detail":"Not Found"}"#).await;
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(prompt) = v["prompt"].as_str() else {
        return plain(sock, "400 Bad Request", r#"{"object":"error","message":"prompt: Field required"}"#).await;
    };
    let n = mock_token_count(prompt);
    let tokens: Vec<usize> = (0..n).collect();
    let answer = serde_json::json!({"count": n, "max_model_len": 4096, "tokens": tokens});
    plain(sock, "200 OK", &answer.to_string()).await
}

async fn serve(mut sock: TcpStream, stats: Arc<Stats>) {
    let mut buf = Vec::with_capacity(8192);
    let mut out = Vec::with_capacity(8192);
    let mut cached: Option<((bool, u64, u64), Vec<u8>)> = None;
    while let Some(req) = read_request(&mut sock, &mut buf, &stats).await {
        if req.path.starts_with("/metrics") {
            if metrics(&mut sock, &stats).await.is_err() {
                return;
            }
            continue;
        }
        if req.path == "/tokenize" {
            if tokenize(&mut sock, &req.body, &stats).await.is_err() {
                return;
            }
            continue;
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let behaviour = Behaviour::from_body(&req.body);
        // Cheap enough not to dominate a client throughput measurement: no JSON parse.
        let max_tokens = json_u64(&req.body, b"\"max_tokens\":").unwrap_or(16);
        let prompt_tokens = req.body.len() as u64; // any deterministic count above the prompt_len the tests use
        {
            let mut last = stats.last_body.lock().unwrap();
            last.clear();
            last.extend_from_slice(&req.body);
        }
        let chat = req.path.ends_with("/chat/completions");
        // The same normal request again on this connection: replay the cached reply.
        let key = (chat, max_tokens, prompt_tokens);
        if behaviour == Behaviour::Normal && cached.as_ref().is_some_and(|(k, _)| *k == key) {
            let reply = &cached.as_ref().expect("checked").1;
            if sock.write_all(reply).await.is_err() {
                return;
            }
            stats.completed_tokens.fetch_add(max_tokens, Ordering::Relaxed);
            if req.close {
                return;
            }
            continue;
        }
        out.clear();
        let keep =
            respond(&mut sock, &mut out, behaviour, chat, max_tokens, prompt_tokens, &stats).await.unwrap_or(false);
        if behaviour == Behaviour::Normal {
            cached = Some((key, out.clone()));
        }
        if !keep || req.close {
            return;
        }
    }
}

/// Writes the response; returns whether the connection may be reused.
async fn respond(
    sock: &mut TcpStream,
    out: &mut Vec<u8>,
    b: Behaviour,
    chat: bool,
    max_tokens: u64,
    prompt_tokens: u64,
    stats: &Stats,
) -> std::io::Result<bool> {
    match b {
        Behaviour::Http500 => {
            plain(
                sock,
                "500 Internal Server Error",
                r#"{"error":{"code":500,"message":"mock internal error","type":"server_error"}}"#,
            )
            .await?;
            return Ok(true);
        }
        Behaviour::Http429 => {
            plain(
                sock,
                "429 Too Many Requests",
                r#"{"error":{"code":429,"message":"rate limited","type":"rate_limit_error"}}"#,
            )
            .await?;
            return Ok(true);
        }
        Behaviour::ContextExceeded => {
            let body = r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}}"#;
            plain(sock, "400 Bad Request", body).await?;
            return Ok(true);
        }
        _ => {}
    }
    out.extend_from_slice(STREAM_HEAD);
    let crlf = b == Behaviour::SplitCrlf;
    if chat {
        event(out, ROLE_JSON, crlf);
    }
    match b {
        Behaviour::RoleDelay
        | Behaviour::TokenDelay
        | Behaviour::SplitCrlf
        | Behaviour::Stall
        | Behaviour::Drop
        | Behaviour::Malformed
        | Behaviour::ErrorEvent => {
            sock.write_all(out).await?;
            out.clear();
        }
        _ => {}
    }
    match b {
        Behaviour::RoleDelay => tokio::time::sleep(ROLE_DELAY).await,
        Behaviour::Stall => {
            event(out, &content_json(chat, "tok ", false), false);
            sock.write_all(out).await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
            return Ok(false);
        }
        Behaviour::Drop => {
            event(out, &content_json(chat, "tok ", false), false);
            event(out, &content_json(chat, "tok ", false), false);
            sock.write_all(out).await?;
            sock.flush().await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Ok(false); // dropping the socket ends the chunked body early
        }
        Behaviour::Malformed => {
            chunk(out, b"data: {\"choices\": [not json\n\n");
            chunk(out, b"data: [DONE]\n\n0\r\n\r\n");
            sock.write_all(out).await?;
            return Ok(true);
        }
        Behaviour::ErrorEvent => {
            event(out, &content_json(chat, "tok ", false), false);
            event(out, r#"{"error":{"code":500,"message":"mock generation failed","type":"server_error"}}"#, false);
            event(out, "[DONE]", false);
            out.extend_from_slice(b"0\r\n\r\n");
            sock.write_all(out).await?;
            return Ok(true);
        }
        _ => {}
    }
    for i in 0..max_tokens {
        let last = i + 1 == max_tokens;
        let ev = content_json(chat, "tok ", last);
        if b == Behaviour::SplitCrlf {
            // One SSE event in three pieces: mid-JSON, then between CR and LF.
            let full = format!("data: {ev}\r\n\r\n");
            let bytes = full.as_bytes();
            let (a, rest) = bytes.split_at(bytes.len() / 2);
            let (m, c) = rest.split_at(rest.len() - 3);
            for piece in [a, m, c] {
                out.clear();
                chunk(out, piece);
                sock.write_all(out).await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            out.clear();
            continue;
        }
        if b == Behaviour::TokenDelay && i > 0 {
            tokio::time::sleep(TOKEN_DELAY).await;
        }
        event(out, &ev, crlf);
        if matches!(b, Behaviour::RoleDelay | Behaviour::TokenDelay) {
            sock.write_all(out).await?;
            out.clear();
        }
    }
    if b != Behaviour::NoUsage {
        let u = format!(
            r#"{{"id":"x","choices":[],"usage":{{"prompt_tokens":{prompt_tokens},"completion_tokens":{max_tokens},"total_tokens":{}}}}}"#,
            prompt_tokens + max_tokens
        );
        event(out, &u, crlf);
    }
    event(out, "[DONE]", crlf);
    if b == Behaviour::DoneStall {
        sock.write_all(out).await?;
        stats.completed_tokens.fetch_add(max_tokens, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(30)).await;
        return Ok(false);
    }
    out.extend_from_slice(b"0\r\n\r\n");
    sock.write_all(out).await?;
    stats.completed_tokens.fetch_add(max_tokens, Ordering::Relaxed);
    Ok(true)
}
