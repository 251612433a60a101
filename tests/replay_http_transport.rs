//! The HTTP target's transport against small loopback servers with one connection behaviour
//! each: a kept-alive connection the server closes while it is idle (the request is sent again on
//! a fresh one), `Connection: close` replies (never reused), a server that closes without
//! answering (a classified failure, not retried), and HTTPS with a CA file of one's own
//! (a self-signed certificate: trusted through `ca_file`, refused without it).

use benchkit::replay::http::{Endpoint, HttpError, HttpTarget, HttpTargetConfig};
use benchkit::replay::{Failure, Request, RequestRecord, Target, TokenCountSource};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the test server does after each reply.
#[derive(Clone, Copy, PartialEq)]
enum After {
    /// Keep the connection open for the next request.
    KeepAlive,
    /// Reply with `Connection: close`, but leave the socket open (a client that reused it
    /// would wait for an answer that never comes).
    SayClose,
    /// Close the connection this long after the reply, without saying so (an idle keep-alive
    /// timeout, as llama-server has).
    IdleClose(Duration),
    /// Read the request and close without answering.
    CloseUnanswered,
}

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    requests: AtomicU64,
}

const SSE: &str = "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}\n\n\
data: {\"choices\":[{\"text\":\"b\",\"finish_reason\":\"length\"}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n\
data: [DONE]\n\n";

/// Reads one request (head and Content-Length body) into `buf`; false at EOF.
async fn read_request<S: AsyncRead + Unpin>(sock: &mut S, buf: &mut Vec<u8>) -> bool {
    loop {
        if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= h + 4 + len {
                buf.drain(..h + 4 + len);
                return true;
            }
        }
        let mut tmp = [0u8; 4096];
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, after: After, counts: Arc<Counts>) {
    let mut buf = Vec::new();
    while read_request(&mut sock, &mut buf).await {
        counts.requests.fetch_add(1, Ordering::Relaxed);
        if after == After::CloseUnanswered {
            return;
        }
        let close = if after == After::SayClose { "Connection: close\r\n" } else { "" };
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{close}Content-Length: {}\r\n\r\n{SSE}",
            SSE.len()
        );
        if sock.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        match after {
            After::SayClose => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                return;
            }
            After::IdleClose(d) => {
                tokio::time::sleep(d).await;
                return;
            }
            _ => {}
        }
    }
}

/// Serves on 127.0.0.1 (through `tls` when given); returns the port and the counters.
async fn server(after: After, tls: Option<tokio_rustls::TlsAcceptor>) -> (u16, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            c.connections.fetch_add(1, Ordering::Relaxed);
            let (c, tls) = (c.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(sock, after, c).await,
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(sock).await {
                            serve_connection(s, after, c).await
                        }
                    }
                }
            });
        }
    });
    (port, counts)
}

fn target(base_url: String, ca_file: Option<std::path::PathBuf>) -> Result<HttpTarget, HttpError> {
    let mut c = HttpTargetConfig::new(base_url, "m");
    c.endpoint = Endpoint::Completions;
    c.api_key_env = None;
    c.request_timeout = Duration::from_secs(3);
    c.ca_file = ca_file;
    HttpTarget::new(c, None)
}

/// A plain-HTTP test server with `after` and a target for it.
async fn plain(after: After) -> (HttpTarget, Arc<Counts>) {
    let (port, counts) = server(after, None).await;
    (target(format!("http://127.0.0.1:{port}"), None).unwrap(), counts)
}

fn request(id: u64) -> Request {
    Request::text(id, "hi", 1, 2)
}

fn assert_complete(r: &RequestRecord) {
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!((r.output_tokens, r.output_tokens_source), (2, TokenCountSource::ServerUsage));
    assert_eq!(r.input_tokens, 3);
    assert_eq!(r.itl_ns.len(), 1);
    assert!(r.sent_ns <= r.first_token_ns.unwrap() && r.first_token_ns.unwrap() <= r.end_ns);
}

#[tokio::test(flavor = "current_thread")]
async fn kept_alive_connections_are_reused() {
    let (t, counts) = plain(After::KeepAlive).await;
    let start = Instant::now();
    for i in 0..20 {
        assert_complete(&t.send(request(i), start).await);
    }
    assert_eq!(counts.requests.load(Ordering::Relaxed), 20);
    assert_eq!(counts.connections.load(Ordering::Relaxed), 1, "one connection for 20 sequential requests");
}

#[tokio::test(flavor = "current_thread")]
async fn connection_closed_while_idle_is_retried_on_a_fresh_one() {
    let (t, counts) = plain(After::IdleClose(Duration::from_millis(30))).await;
    let start = Instant::now();
    for i in 0..3 {
        // The server has closed the pooled connection by the time the next request goes out.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let before = start.elapsed().as_nanos() as u64;
        let r = t.send(request(i), start).await;
        assert_complete(&r);
        assert!(r.sent_ns >= before);
    }
    assert_eq!(counts.requests.load(Ordering::Relaxed), 3, "no request was answered twice");
    assert_eq!(counts.connections.load(Ordering::Relaxed), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn connection_close_replies_are_not_reused() {
    let (t, counts) = plain(After::SayClose).await;
    let start = Instant::now();
    for i in 0..4 {
        // A reused connection would get no answer and time out (3 s).
        let r = t.send(request(i), start).await;
        assert_complete(&r);
        assert!(r.end_ns - r.sent_ns < 2_000_000_000);
    }
    assert_eq!(counts.connections.load(Ordering::Relaxed), 4);
}

#[tokio::test(flavor = "current_thread")]
async fn server_closing_without_an_answer_is_a_connection_failure() {
    let (t, counts) = plain(After::CloseUnanswered).await;
    let r = t.send(request(0), Instant::now()).await;
    assert!(matches!(&r.failure, Some(Failure::Connection { .. })), "{:?}", r.failure);
    assert_eq!(r.output_tokens, 0);
    // A fresh connection that fails is not retried: the server saw the request once.
    assert_eq!(counts.requests.load(Ordering::Relaxed), 1);
}

/// A self-signed certificate for 127.0.0.1, as a rustls acceptor and a PEM file.
fn self_signed(dir: &std::path::Path) -> (tokio_rustls::TlsAcceptor, std::path::PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let pem = dir.join("ca.pem");
    std::fs::write(&pem, ck.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(cfg)), pem)
}

#[tokio::test(flavor = "current_thread")]
async fn https_with_own_ca_file_and_untrusted_certificate_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, pem) = self_signed(dir.path());
    let (port, counts) = server(After::KeepAlive, Some(acceptor)).await;
    let url = format!("https://127.0.0.1:{port}");
    let start = Instant::now();

    let trusted = target(url.clone(), Some(pem)).unwrap();
    for i in 0..3 {
        assert_complete(&trusted.send(request(i), start).await);
    }
    assert_eq!(counts.connections.load(Ordering::Relaxed), 1, "TLS connection kept alive");

    // Only the webpki roots: the certificate is refused, as a classified failure.
    let untrusted = target(url, None).unwrap();
    let r = untrusted.send(request(9), start).await;
    match &r.failure {
        Some(Failure::Connection { detail }) => assert!(detail.contains("TLS"), "{detail}"),
        other => panic!("expected a TLS connection failure, got {other:?}"),
    }
    assert_eq!(counts.requests.load(Ordering::Relaxed), 3);
}

#[test]
fn bad_ca_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let r = target("https://127.0.0.1:1".into(), Some(missing.clone()));
    assert!(matches!(&r, Err(HttpError::CaFile { path, .. }) if *path == missing), "{r:?}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let r = target("https://127.0.0.1:1".into(), Some(empty));
    assert!(matches!(&r, Err(HttpError::CaFile { .. })), "{r:?}");
    // Plain http never reads the CA file.
    assert!(target("http://127.0.0.1:1".into(), Some(missing)).is_ok());
}
