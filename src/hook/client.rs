//! An HTTP/1.1 client for one endpoint, on the glommio executor that calls it: hyper's client
//! connection over a glommio `TcpStream` (plain, or TLS through rustls with the `ring` provider),
//! with a small pool of idle keep-alive connections, a connect timeout and a request timeout.
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
use hyper::client::conn::http1::{self, SendRequest};
use std::{
    cell::RefCell,
    future::Future,
    io,
    net::{SocketAddr, ToSocketAddrs},
    pin::Pin,
    rc::Rc,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use super::retry::FailureKind;

/// Timeouts and pool size for one endpoint.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Default 5 s. Shorter notices a dead host sooner; too short fails on slow networks.
    pub connect_timeout: Duration,
    /// Default 10 s: a whole `post`, connecting (when no pooled connection serves) included,
    /// to the end of the response body.
    pub request_timeout: Duration,
    /// Default 4: idle keep-alive connections kept. One suffices for a sequential sender.
    pub max_idle: usize,
    /// Default 4 s: an idle connection older than this is closed rather than reused. Below
    /// common server keep-alive timeouts (Node 5 s, nginx 75 s), so the server rarely closes a
    /// connection just as a request is written on it.
    pub idle_timeout: Duration,
    /// Default `None`: system roots (webpki-roots if none load). Set for private CAs or tests.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_idle: 4,
            idle_timeout: Duration::from_secs(4),
            tls: None,
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
}

impl SendError {
    /// True for failures of the socket (resolve, connect, TLS, reset, timeout).
    pub fn is_socket(&self) -> bool {
        !matches!(self, SendError::Protocol(_) | SendError::Request(_))
    }

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

    /// POSTs `body` with `headers` (plus Host, Content-Length) and returns the response status
    /// once the whole response has been read. The body is drained and dropped.
    pub async fn post(&self, body: Bytes, headers: &[(String, String)]) -> Result<u16, SendError> {
        let request = self.request(body, headers)?;
        let timeout = self.config.request_timeout;
        match with_timeout(timeout, self.exchange(request)).await {
            Some(result) => result,
            None => Err(SendError::Timeout),
        }
    }

    fn request(
        &self,
        body: Bytes,
        headers: &[(String, String)],
    ) -> Result<http::Request<Full<Bytes>>, http::Error> {
        let path = self.target.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut builder =
            http::Request::post(path).header(http::header::HOST, &self.target.authority);
        if let Some(basic) = &self.target.basic {
            builder = builder.header(http::header::AUTHORIZATION, basic);
        }
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(Full::new(body))
    }

    /// Sends on a pooled connection if one takes the request, else on a new one.
    async fn exchange(&self, mut request: http::Request<Full<Bytes>>) -> Result<u16, SendError> {
        while let Some(mut sender) = self.take_idle() {
            match sender.try_send_request(request).await {
                Ok(response) => return self.finish(sender, response).await,
                Err(mut e) => match e.take_message() {
                    // Not written: the connection was closing. Try the next one.
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::from_hyper(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        let response = sender.send_request(request).await.map_err(SendError::from_hyper)?;
        self.finish(sender, response).await
    }

    /// Reads the response body to the end so the connection can be reused, then pools it.
    async fn finish(
        &self,
        sender: SendRequest<Full<Bytes>>,
        response: http::Response<hyper::body::Incoming>,
    ) -> Result<u16, SendError> {
        let status = response.status().as_u16();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(SendError::from_hyper)?;
        }
        self.put_idle(sender);
        Ok(status)
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
        let addr = resolve(&target.host, target.port)?;
        let stream = TcpStream::connect_timeout(addr, self.config.connect_timeout)
            .await
            .map_err(|e| connect_error(e.into()))?;
        // A failure to disable Nagle costs latency, not correctness.
        let _ = stream.set_nodelay(true);
        match &target.tls {
            None => handshake(ClientIo(stream)).await,
            Some((connector, name)) => {
                let handshake_tls = connector.connect(name.clone(), stream);
                let tls: TlsStream<TcpStream> =
                    with_timeout(self.config.connect_timeout, handshake_tls)
                        .await
                        .ok_or(SendError::ConnectTimeout)?
                        .map_err(SendError::Tls)?;
                handshake(ClientIo(tls)).await
            }
        }
    }
}

/// Runs hyper's HTTP/1 handshake (no I/O) and spawns the connection driver.
async fn handshake<S>(io: ClientIo<S>) -> Result<SendRequest<Full<Bytes>>, SendError>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (sender, connection) = http1::handshake(io).await.map_err(SendError::from_hyper)?;
    glommio::spawn_local(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "hook client connection ended");
        }
    })
    .detach();
    Ok(sender)
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, SendError> {
    let not_found = || io::Error::new(io::ErrorKind::NotFound, "no address");
    (host, port)
        .to_socket_addrs()
        .and_then(|mut addrs| addrs.next().ok_or_else(not_found))
        .map_err(|e| SendError::Resolve(host.to_string(), e))
}

fn connect_error(e: io::Error) -> SendError {
    if e.kind() == io::ErrorKind::TimedOut {
        SendError::ConnectTimeout
    } else {
        SendError::Connect(e)
    }
}

/// `Some(output)`, or `None` if `duration` passed first (the future is then dropped).
pub(crate) async fn with_timeout<F: Future>(duration: Duration, future: F) -> Option<F::Output> {
    let expire = async {
        glommio::timer::Timer::new(duration).await;
        None
    };
    futures_lite::future::or(async { Some(future.await) }, expire).await
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

/// hyper's I/O traits over any futures-io stream (glommio TCP, or rustls over it).
struct ClientIo<S>(S);

impl<S: AsyncRead + Unpin> hyper::rt::Read for ClientIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; 8192];
        let want = buf.remaining().min(chunk.len());
        match Pin::new(&mut self.get_mut().0).poll_read(cx, &mut chunk[..want]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&chunk[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for ClientIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_close(cx)
    }
}
