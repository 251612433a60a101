//! The HTTP/1.1 transport of the replay target: hyper's low-level connection API
//! ([`hyper::client::conn::http1`]) with a connection pool of its own, in which every request
//! drives its connection inside its own task.
//!
//! Why not a general-purpose client: reqwest (which this target used first) runs each
//! connection as a task of its own, so a request, its response head and every body chunk cross
//! between two tasks — and, on a multi-threaded runtime, often between two threads. At tens of
//! thousands of requests per second those wake-ups were most of the client's CPU and left too
//! little headroom to keep a schedule through the machine's hiccups (docs/replay.md). Here the
//! request's task polls hyper's connection state machine and the response body together: one
//! task, no hand-offs, the socket read straight into the SSE decoder. hyper still does all of
//! HTTP/1.1 (framing, chunked bodies, keep-alive state).
//!
//! A connection goes back to the idle pool only after its response has been read to the end
//! (an abandoned or failed exchange closes it), and an idle connection older than the idle
//! timeout is closed instead of reused.

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper::header::{HeaderMap, HeaderValue, HOST, USER_AGENT};
use hyper::{Method, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream a connection runs over: plain TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Stream = TokioIo<Box<dyn Io>>;
type Driver = http1::Connection<Stream, Full<Bytes>>;

/// Where requests go, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The full URL (for messages).
    pub url: String,
    /// The scheme is `https`.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (the scheme's default when the URL names none).
    pub port: u16,
    /// `Host` header value (the URL's authority).
    authority: HeaderValue,
    /// Path and query, sent as the request target.
    path: Uri,
}

impl Origin {
    /// Parses an absolute `http://` or `https://` URL.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(format!("scheme {other} is not http or https")),
            None => return Err("not an absolute URL (no scheme)".to_string()),
        };
        let authority = uri.authority().ok_or("no host")?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        if host.is_empty() {
            return Err("no host".to_string());
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
        let authority = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
        Ok(Self { url: url.to_string(), tls, host, port, authority, path })
    }
}

/// A failure below HTTP semantics: connecting, TLS, the connection breaking, malformed HTTP.
#[derive(Debug)]
pub(crate) struct TransportError {
    /// The error with its source chain.
    pub detail: String,
    /// A pooled connection failed before any response arrived: the server had closed it while
    /// idle (nothing was exchanged), so the request may be sent again on a fresh one.
    pub stale: bool,
}

impl TransportError {
    fn new(context: &str, e: &(dyn std::error::Error + 'static), stale: bool) -> Self {
        let mut detail = format!("{context}: {e}");
        let mut src = e.source();
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        Self { detail, stale }
    }
}

/// One HTTP/1.1 connection: hyper's request handle and its connection state machine, which
/// whoever uses the connection polls.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Pin<Box<Driver>>,
    idle_since: Instant,
}

/// Client settings.
pub(crate) struct ClientConfig {
    pub headers: HeaderMap,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A keep-alive client for one origin.
pub(crate) struct Client {
    origin: Origin,
    headers: HeaderMap,
    connect_timeout: Duration,
    idle_timeout: Duration,
    tls: Option<(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>,
    /// Idle connections, most recently used last (reused first: its socket is warm).
    idle: Mutex<Vec<Conn>>,
}

impl Client {
    /// A client for `origin`, sending `config.headers` (plus `Host` and a default `User-Agent`)
    /// with every request. `config.tls` is needed for `https` origins.
    pub(crate) fn new(origin: Origin, config: ClientConfig) -> Result<Self, String> {
        let mut headers = config.headers;
        headers.insert(HOST, origin.authority.clone());
        headers.entry(USER_AGENT).or_insert(HeaderValue::from_static(concat!("benchkit/", env!("CARGO_PKG_VERSION"))));
        let tls = match (origin.tls, config.tls) {
            (false, _) => None,
            (true, None) => return Err("https needs a TLS configuration".to_string()),
            (true, Some(cfg)) => {
                let name = rustls::pki_types::ServerName::try_from(origin.host.clone())
                    .map_err(|e| format!("{:?} is not a valid TLS server name: {e}", origin.host))?;
                Some((tokio_rustls::TlsConnector::from(cfg), name))
            }
        };
        Ok(Self {
            origin,
            headers,
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The origin requests go to.
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// POSTs `body` and waits for the response head. `fresh` skips the idle pool (the retry
    /// after a stale connection).
    pub(crate) async fn post(&self, body: Bytes, fresh: bool) -> Result<Response<'_>, TransportError> {
        self.request(Method::POST, body, fresh).await
    }

    /// GETs the origin's path (a metrics scrape).
    pub(crate) async fn get(&self) -> Result<Response<'_>, TransportError> {
        self.request(Method::GET, Bytes::new(), false).await
    }

    async fn request(&self, method: Method, body: Bytes, fresh: bool) -> Result<Response<'_>, TransportError> {
        let pooled = if fresh { None } else { self.checkout() };
        let (mut conn, reused) = match pooled {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let mut req = hyper::Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = self.origin.path.clone();
        *req.headers_mut() = self.headers.clone();
        // A new connection is ready at once; a reused one after hyper has seen the previous
        // response through (driven here, in this task).
        let ready = drive(&mut conn.driver, conn.sender.ready()).await;
        let head = match ready {
            Some(Ok(())) => {
                let fut = conn.sender.send_request(req);
                drive(&mut conn.driver, fut).await
            }
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        let resp = match head {
            Some(Ok(resp)) => resp,
            Some(Err(e)) => return Err(TransportError::new("sending the request", &e, reused)),
            // The connection finished without an error and without a response: it was closed.
            None => {
                return Err(TransportError {
                    detail: "connection closed before a response arrived".to_string(),
                    stale: reused,
                })
            }
        };
        let status = resp.status();
        Ok(Response { client: self, conn: Some(conn), status, body: resp.into_body(), driver_done: false })
    }

    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() && c.idle_since.elapsed() < self.idle_timeout {
                return Some(c);
            }
        }
        None
    }

    fn checkin(&self, mut conn: Conn) {
        conn.idle_since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push(conn);
    }

    async fn connect(&self) -> Result<Conn, TransportError> {
        let (host, port) = (self.origin.host.as_str(), self.origin.port);
        let io: Box<dyn Io> = match tokio::time::timeout(self.connect_timeout, async {
            let tcp =
                TcpStream::connect((host, port)).await.map_err(|e| TransportError::new("connecting", &e, false))?;
            tcp.set_nodelay(true).map_err(|e| TransportError::new("setting TCP_NODELAY", &e, false))?;
            Ok::<Box<dyn Io>, TransportError>(match &self.tls {
                None => Box::new(tcp),
                Some((connector, name)) => Box::new(
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| TransportError::new("TLS handshake", &e, false))?,
                ),
            })
        })
        .await
        {
            Ok(r) => r?,
            Err(_) => {
                return Err(TransportError {
                    detail: format!("connecting to {host}:{port}: no connection within {:?}", self.connect_timeout),
                    stale: false,
                })
            }
        };
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| TransportError::new("HTTP handshake", &e, false))?;
        Ok(Conn { sender, driver: Box::pin(driver), idle_since: Instant::now() })
    }
}

/// Polls `fut` while driving the connection `driver` in the same task. `None` when the
/// connection finished (closed or failed) before `fut` did; after that `fut` alone cannot make
/// progress, since nothing else drives the connection.
async fn drive<F: Future>(driver: &mut Pin<Box<Driver>>, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match driver.as_mut().poll(cx) {
            // Whatever the driver just did for `fut` (a request written, a head read) is
            // picked up now rather than after a round trip through the scheduler.
            Poll::Pending => fut.as_mut().poll(cx).map(Some),
            // The driver delivered everything it had to `fut` before finishing: one more poll
            // gives `fut` the outcome (a response, or the error the connection ended with).
            Poll::Ready(_) => Poll::Ready(match fut.as_mut().poll(cx) {
                Poll::Ready(out) => Some(out),
                Poll::Pending => None,
            }),
        }
    })
    .await
}

/// A response being read; its connection goes back to the pool once the body has been read to
/// the end ([`Response::chunk`] returned `Ok(None)`), and is closed if the response is dropped
/// before.
pub(crate) struct Response<'c> {
    client: &'c Client,
    conn: Option<Conn>,
    /// Status of the response.
    pub status: StatusCode,
    body: hyper::body::Incoming,
    driver_done: bool,
}

impl Response<'_> {
    /// The next piece of the body, `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            let frame = poll_fn(|cx| {
                let frame = std::task::ready!(self.poll_frame(cx));
                if frame.is_none() {
                    // Let hyper finish the exchange now: a `Connection: close` reply ends the
                    // driver here, and a kept-alive connection becomes ready for the next request.
                    self.poll_driver(cx);
                }
                Poll::Ready(frame)
            })
            .await;
            match frame {
                None => {
                    self.release();
                    return Ok(None);
                }
                Some(Err(e)) => {
                    self.conn = None;
                    return Err(TransportError::new("reading the response", &e, false));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    } // trailers: nothing to time
                }
            }
        }
    }

    /// Polls the connection's state machine; records whether it finished.
    fn poll_driver(&mut self, cx: &mut Context<'_>) {
        if self.driver_done {
            return;
        }
        if let Some(conn) = &mut self.conn {
            if conn.driver.as_mut().poll(cx).is_ready() {
                self.driver_done = true;
            }
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        if let Poll::Ready(f) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(f);
        }
        // The body waits for the connection, which reads the socket when polled: after a
        // finished driver the body has all there will be (or its error); after a driver that
        // read something, the body has it now (no round trip through the scheduler).
        self.poll_driver(cx);
        Pin::new(&mut self.body).poll_frame(cx)
    }

    /// Returns the connection to the pool if it can carry another request.
    fn release(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.driver_done && !conn.sender.is_closed() {
            self.client.checkin(conn);
        }
    }
}
