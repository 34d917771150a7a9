//! An HTTP/1.1 client for one endpoint, on the glommio executor that calls it: hyper's client
//! connection over a glommio `TcpStream` (plain, or TLS through rustls with the `ring` provider),
//! with a small pool of idle keep-alive connections, a connect timeout and a request timeout.
//! Two calls: `post` for webhooks (status only, the answer drained), and `request` for upstream
//! calls (status, headers and a body read up to a cap, never buffered past it).
//!
//! It exists because hyper-util's pooled client wants tokio; the hook shard is a glommio
//! executor. Errors say whether the failure was at the socket level, which the retry policy
//! turns into a longer pause.
//!
//! Host names are resolved with the blocking system resolver when a new connection is opened
//! (rare with keep-alive); an IP literal in the URL avoids it.

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::{client::TlsStream, rustls, TlsConnector};
use glommio::net::TcpStream;
use http_body_util::{BodyExt, Full};
use hyper::{
    body::Incoming,
    client::conn::http1::{self, SendRequest},
};
use std::{
    cell::RefCell,
    io,
    rc::Rc,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

pub use super::rt::with_timeout;
use super::rt::{collect, resolve, CollectError, Io};
use super::FailureKind;

/// Timeouts and pool size for one endpoint.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Default 5 s. Shorter notices a dead host sooner; too short fails on slow networks.
    pub connect_timeout: Duration,
    /// Default 10 s: a whole `post` or `request`, connecting (when no pooled connection
    /// serves) included, to the end of the response body.
    pub request_timeout: Duration,
    /// Default 4: idle keep-alive connections kept. One suffices for a sequential sender.
    pub max_idle: usize,
    /// Default 4 s: an idle connection older than this is closed rather than reused. Below
    /// common server keep-alive timeouts (Node 5 s, nginx 75 s), so the server rarely closes a
    /// connection just as a request is written on it.
    pub idle_timeout: Duration,
    /// Default `None`: system roots (webpki-roots if none load). Set for private CAs or tests.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Default 1 MiB: the largest response body `request` reads; past it the call fails with
    /// [`SendError::BodyTooLarge`] and the connection is dropped unread. Gateway answers are
    /// small JSON; a larger cap lets one bad upstream hold that much memory per call in flight.
    /// `post` drains and drops bodies, so it has no cap.
    pub max_response_body: usize,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_idle: 4,
            idle_timeout: Duration::from_secs(4),
            tls: None,
            max_response_body: 1024 * 1024,
        }
    }
}

/// Why a client could not be made: a URL it cannot use, or TLS settings rustls rejects.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid URL: {0}")]
    Invalid(#[from] http::uri::InvalidUri),
    #[error("URL scheme must be http or https")]
    Scheme,
    #[error("URL has no host")]
    NoHost,
    #[error("invalid TLS server name: {0}")]
    ServerName(String),
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why a request got no HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("resolve {0}: {1}")]
    Resolve(String, io::Error),
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("TLS: {0}")]
    Tls(io::Error),
    #[error("request timed out")]
    Timeout,
    /// The connection failed under the exchange: reset, closed early, read or write error.
    #[error("transport: {0}")]
    Transport(hyper::Error),
    /// The exchange failed at the HTTP level (unparseable response, bad request head).
    #[error("http: {0}")]
    Protocol(hyper::Error),
    #[error("request: {0}")]
    Request(#[from] http::Error),
    /// The response body (or its announced length) is larger than `max_response_body`.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
}

impl SendError {
    /// True for failures of the socket (resolve, connect, TLS, reset, timeout).
    pub fn is_socket(&self) -> bool {
        !matches!(
            self,
            SendError::Protocol(_) | SendError::Request(_) | SendError::BodyTooLarge { .. }
        )
    }

    /// The kind of failure the hook's retry policy pauses for.
    pub fn kind(&self) -> FailureKind {
        if self.is_socket() {
            FailureKind::Socket
        } else {
            FailureKind::Other
        }
    }

    fn from_hyper(e: hyper::Error) -> SendError {
        let io_source = std::error::Error::source(&e).is_some_and(|s| s.is::<io::Error>());
        if io_source || e.is_closed() || e.is_incomplete_message() || e.is_canceled() {
            SendError::Transport(e)
        } else {
            SendError::Protocol(e)
        }
    }
}

/// An upstream's answer to `request`, body read whole.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Where requests go: parsed once from the URL.
struct Target {
    uri: http::Uri,
    /// The URL without its credentials, for logs and metrics.
    shown: String,
    host: String,
    port: u16,
    /// `host[:port]` as sent in the Host header.
    authority: String,
    /// `Basic ...` from the URL's userinfo, sent as `Authorization`.
    basic: Option<String>,
    tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
}

/// An idle keep-alive connection and when it went idle.
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// An HTTP client bound to one endpoint URL. Cheap to clone; clones share the pool.
/// Single-threaded: use it on the executor that made it.
#[derive(Clone)]
pub struct HttpClient {
    target: Rc<Target>,
    config: Rc<ClientConfig>,
    idle: Rc<RefCell<Vec<Idle>>>,
}

impl HttpClient {
    /// Parses `url` (`http://` or `https://`); connects lazily, on the first request.
    pub fn new(url: &str, config: ClientConfig) -> Result<HttpClient, SetupError> {
        let uri: http::Uri = url.parse()?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(SetupError::Scheme),
        };
        let host = uri.host().ok_or(SetupError::NoHost)?.trim_matches(['[', ']']).to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let full = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let authority = super::url::host_port(full).to_string();
        let basic = super::url::basic_auth(full);
        let tls = if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| SetupError::ServerName(e.to_string()))?;
            let tls_config = match &config.tls {
                Some(tls) => tls.clone(),
                None => default_tls()?,
            };
            Some((TlsConnector::from(tls_config), name))
        } else {
            None
        };
        let shown = super::url::redact(url);
        let target = Target { uri, shown, host, port, authority, basic, tls };
        Ok(HttpClient {
            target: Rc::new(target),
            config: Rc::new(config),
            idle: Rc::new(RefCell::new(Vec::new())),
        })
    }

    /// The endpoint's URL without credentials (userinfo, query values), for logs and metrics.
    pub fn shown(&self) -> &str {
        &self.target.shown
    }

    /// Idle keep-alive connections currently pooled.
    pub fn idle_count(&self) -> usize {
        self.idle.borrow().len()
    }

    /// POSTs `body` with `headers` (plus Host, Content-Length) to the URL's path and returns the
    /// response status once the whole response has been read. The body is drained and dropped.
    pub async fn post(&self, body: Bytes, headers: &[(String, String)]) -> Result<u16, SendError> {
        let path = self.target.uri.path_and_query().map_or("/", |p| p.as_str());
        self.post_to(path, body, headers).await
    }

    /// Like [`HttpClient::post`], to `path_and_query` (in place of the URL's own) on the
    /// URL's host: for webhooks whose query changes with every request.
    pub async fn post_to(
        &self,
        path_and_query: &str,
        body: Bytes,
        headers: &[(String, String)],
    ) -> Result<u16, SendError> {
        let request = self.build(http::Method::POST, path_and_query, headers, body)?;
        let exchange = async {
            let (sender, response) = self.exchange(request).await?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame.map_err(SendError::from_hyper)?;
            }
            self.put_idle(sender);
            Ok(status)
        };
        with_timeout(self.config.request_timeout, exchange).await.unwrap_or(Err(SendError::Timeout))
    }

    /// Sends `method` to `path_and_query` (appended to the URL's own path, so
    /// `http://backend/api` with `/register?x=1` asks for `/api/register?x=1`) with `headers`
    /// (plus Host, and Content-Length when `body` is not empty), and returns the status, the
    /// response headers and the body, read up to `max_response_body`.
    pub async fn request(
        &self,
        method: http::Method,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Response, SendError> {
        let path = join_path(self.target.uri.path(), path_and_query);
        let request = self.build(method, &path, headers, body)?;
        let limit = self.config.max_response_body;
        let exchange = async {
            let (sender, response) = self.exchange(request).await?;
            let (parts, body) = response.into_parts();
            let (body, _) = collect(body, limit).await.map_err(|e| match e {
                CollectError::TooLarge(limit) => SendError::BodyTooLarge { limit },
                CollectError::Body(e) => SendError::from_hyper(e),
            })?;
            self.put_idle(sender);
            Ok(Response { status: parts.status.as_u16(), headers: parts.headers, body })
        };
        with_timeout(self.config.request_timeout, exchange).await.unwrap_or(Err(SendError::Timeout))
    }

    fn build(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, http::Error> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.target.authority);
        if let Some(basic) = &self.target.basic {
            builder = builder.header(http::header::AUTHORIZATION, basic);
        }
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(Full::new(body))
    }

    /// Sends on a pooled connection if one takes the request, else on a new one. The caller
    /// reads the body, then pools the sender if the connection may be reused.
    async fn exchange(
        &self,
        mut request: http::Request<Full<Bytes>>,
    ) -> Result<(SendRequest<Full<Bytes>>, http::Response<Incoming>), SendError> {
        while let Some(mut sender) = self.take_idle() {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((sender, response)),
                Err(mut e) => match e.take_message() {
                    // Not written: the connection was closing. Try the next one.
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::from_hyper(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        let response = sender.send_request(request).await.map_err(SendError::from_hyper)?;
        Ok((sender, response))
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.borrow_mut();
        while let Some(entry) = idle.pop() {
            let fresh = entry.since.elapsed() < self.config.idle_timeout;
            if fresh && !entry.sender.is_closed() && entry.sender.is_ready() {
                return Some(entry.sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.borrow_mut();
        idle.retain(|entry| entry.since.elapsed() < self.config.idle_timeout);
        if idle.len() < self.config.max_idle && !sender.is_closed() {
            idle.push(Idle { sender, since: Instant::now() });
        }
    }

    /// Opens a connection (TCP, then TLS for https), hands it to hyper, and drives it in a
    /// detached task that ends when the last `SendRequest` for it is dropped.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let target = &self.target;
        let addr = resolve(&target.host, target.port)
            .map_err(|e| SendError::Resolve(target.host.clone(), e))?;
        let stream = TcpStream::connect_timeout(addr, self.config.connect_timeout)
            .await
            .map_err(|e| connect_error(e.into()))?;
        // A failure to disable Nagle costs latency, not correctness.
        let _ = stream.set_nodelay(true);
        match &target.tls {
            None => handshake(Io::new(stream)).await,
            Some((connector, name)) => {
                let handshake_tls = connector.connect(name.clone(), stream);
                let tls: TlsStream<TcpStream> =
                    with_timeout(self.config.connect_timeout, handshake_tls)
                        .await
                        .ok_or(SendError::ConnectTimeout)?
                        .map_err(SendError::Tls)?;
                handshake(Io::new(tls)).await
            }
        }
    }
}

/// Runs hyper's HTTP/1 handshake (no I/O) and spawns the connection driver.
async fn handshake<S>(io: Io<S>) -> Result<SendRequest<Full<Bytes>>, SendError>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (sender, connection) = http1::handshake(io).await.map_err(SendError::from_hyper)?;
    glommio::spawn_local(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "upstream HTTP/1.1 connection ended");
        }
    })
    .detach();
    Ok(sender)
}

/// `base` (the URL's path) without its trailing slash, then `path` with a leading one.
fn join_path(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("{base}{slash}{path}")
}

fn connect_error(e: io::Error) -> SendError {
    if e.kind() == io::ErrorKind::TimedOut {
        SendError::ConnectTimeout
    } else {
        SendError::Connect(e)
    }
}

/// The TLS settings for https endpoints without their own: system roots, ring, http/1.1 ALPN.
/// Built once per process; loading the system roots reads files.
pub fn default_tls() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    static DEFAULT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(config.clone());
    }
    let config = tls_config(root_store())?;
    Ok(DEFAULT.get_or_init(|| config).clone())
}

/// A rustls client config over `roots` with the ring provider and http/1.1 ALPN.
pub fn tls_config(
    roots: rustls::RootCertStore,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's trusted roots, or the bundled Mozilla roots if none could be loaded.
fn root_store() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!(errors = ?native.errors, "no system TLS roots; using webpki-roots");
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_go_under_the_url_path() {
        assert_eq!(join_path("/", "/register?a=1"), "/register?a=1");
        assert_eq!(join_path("", "register"), "/register");
        assert_eq!(join_path("/api/", "/register"), "/api/register");
        assert_eq!(join_path("/api", "sub_add"), "/api/sub_add");
    }

    #[test]
    fn only_socket_failures_are_socket_kind() {
        assert_eq!(SendError::Timeout.kind(), FailureKind::Socket);
        assert_eq!(SendError::ConnectTimeout.kind(), FailureKind::Socket);
        assert_eq!(SendError::BodyTooLarge { limit: 1 }.kind(), FailureKind::Other);
    }
}
