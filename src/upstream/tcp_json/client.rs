//! A client for APISIX-style length-prefixed TCP JSON upstreams: one request, then one reply, on
//! a connection at a time, with a keep-alive pool per node, connect/send/read timeouts, and the
//! original's retry rules, so the gateway can answer with the original's codes.
//!
//! As in APISIX's `ht-msg-sub`: a connection is picked round-robin over the nodes (a refused
//! connect moves on to the next node, up to `retries` picks); when the exchange on it fails
//! (timeout, reset, closed, which is also how a stale keep-alive connection shows itself), the
//! request is sent once more on a new connection, and if that fails too the error says whether
//! a timeout came first (5022) or not (5023).

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::{
    cell::{Cell, RefCell},
    io,
    rc::Rc,
    time::{Duration, Instant},
};

use super::codec::{Codec, FrameError, HEADER_LEN};
use crate::upstream::rt::{resolve, with_timeout};

/// Timeouts, pool and limits for one upstream. Defaults are APISIX's upstream defaults.
#[derive(Clone, Debug)]
pub struct TcpJsonConfig {
    /// Default 60 s (APISIX `timeout.connect`), per connect attempt.
    pub connect_timeout: Duration,
    /// Default 60 s (`timeout.send`): writing one request frame.
    pub send_timeout: Duration,
    /// Default 60 s (`timeout.read`): from the request written to the whole reply read. A
    /// connection waiting on a slow upstream holds only its socket and reply buffer.
    pub read_timeout: Duration,
    /// Default 320 (`keepalive_pool.size`): idle connections kept per node.
    pub pool_size: usize,
    /// Default 60 s (`keepalive_pool.idle_timeout`): an idle connection older than this is
    /// closed instead of reused. A stale one costs a resend, not a failure.
    pub idle_timeout: Duration,
    /// Default 1000 (`keepalive_pool.requests`): requests on one connection before it closes.
    pub pool_requests: u32,
    /// Default `None`: as many connect picks as there are nodes (`upstream.retries`).
    pub retries: Option<usize>,
    /// Default 1 MiB: the largest frame payload written or read. A reply announcing more is
    /// refused from its header, before its buffer is allocated.
    pub max_frame: usize,
}

impl Default for TcpJsonConfig {
    fn default() -> TcpJsonConfig {
        TcpJsonConfig {
            connect_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(60),
            pool_size: 320,
            idle_timeout: Duration::from_secs(60),
            pool_requests: 1000,
            retries: None,
            max_frame: 1024 * 1024,
        }
    }
}

/// Nodes the client cannot use.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("an upstream needs at least one node")]
    NoNodes,
    #[error("node {0:?} is not host:port")]
    BadNode(String),
}

/// What went wrong in one exchange.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("send timed out")]
    SendTimeout,
    #[error("read timed out")]
    ReadTimeout,
    #[error("{0}")]
    Io(io::Error),
    #[error("connection closed before the whole reply")]
    Closed,
    #[error("bad reply frame: {0}")]
    Frame(FrameError),
}

impl Failure {
    fn is_timeout(&self) -> bool {
        match self {
            Failure::SendTimeout | Failure::ReadTimeout => true,
            Failure::Connect(e) | Failure::Io(e) => e.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }
}

/// Why a call got no reply; [`TcpJsonError::code`] gives APISIX's error code for it.
#[derive(Debug, thiserror::Error)]
pub enum TcpJsonError {
    /// The request is over `max_frame`: 5001, status 500.
    #[error("request: {0}")]
    Encode(FrameError),
    /// No node accepted a connection within `retries` picks: 5021.
    #[error("failed to connect upstream: {0}")]
    Connect(io::Error),
    /// The exchange timed out, and the resend on a new connection failed: 5022.
    #[error("upstream timed out, and the retry failed: {0}")]
    RetryAfterTimeout(Failure),
    /// The exchange failed otherwise, and the resend on a new connection failed: 5023.
    #[error("second request to upstream failed: {0}")]
    SecondRequest(Failure),
    /// The upstream answered with an empty frame: 5024.
    #[error("empty response from upstream")]
    Empty,
    /// The reply frame was malformed (bad magic, over `max_frame`); never resent: 5024.
    #[error("bad response from upstream: {0}")]
    Protocol(FrameError),
}

impl TcpJsonError {
    /// APISIX's code: 5001 for a request it cannot send, else 5021 to 5024, all answered with
    /// HTTP status [`TcpJsonError::status`] and message "failed to connect/request upstream".
    pub fn code(&self) -> u16 {
        match self {
            TcpJsonError::Encode(_) => 5001,
            TcpJsonError::Connect(_) => 5021,
            TcpJsonError::RetryAfterTimeout(_) => 5022,
            TcpJsonError::SecondRequest(_) => 5023,
            TcpJsonError::Empty | TcpJsonError::Protocol(_) => 5024,
        }
    }

    /// The HTTP status APISIX answers with: 500 for 5001, 502 for the others.
    pub fn status(&self) -> u16 {
        if matches!(self, TcpJsonError::Encode(_)) {
            500
        } else {
            502
        }
    }
}

struct Node {
    host: String,
    port: u16,
}

/// An open connection and what the pool needs to know of it.
struct Conn {
    stream: TcpStream,
    node: usize,
    requests: u32,
    since: Instant,
}

/// A client for one upstream (a list of nodes). Cheap to clone; clones share the pools.
/// Single-threaded: use it on the executor that made it.
#[derive(Clone)]
pub struct TcpJsonClient {
    nodes: Rc<[Node]>,
    config: Rc<TcpJsonConfig>,
    codec: Codec,
    next: Rc<Cell<usize>>,
    idle: Rc<RefCell<Vec<Vec<Conn>>>>,
}

impl TcpJsonClient {
    /// `nodes` as `host:port` (`[v6]:port` for IPv6); connects lazily.
    pub fn new<S: AsRef<str>>(
        nodes: &[S],
        config: TcpJsonConfig,
    ) -> Result<TcpJsonClient, SetupError> {
        let nodes = nodes.iter().map(|n| parse_node(n.as_ref())).collect::<Result<Rc<_>, _>>()?;
        if nodes.is_empty() {
            return Err(SetupError::NoNodes);
        }
        let idle = (0..nodes.len()).map(|_| Vec::new()).collect();
        Ok(TcpJsonClient {
            nodes,
            codec: Codec::new(config.max_frame),
            config: Rc::new(config),
            next: Rc::new(Cell::new(0)),
            idle: Rc::new(RefCell::new(idle)),
        })
    }

    /// Idle keep-alive connections pooled, over all nodes.
    pub fn idle_count(&self) -> usize {
        self.idle.borrow().iter().map(Vec::len).sum()
    }

    /// Sends the JSON `request` in one frame and returns the reply frame's JSON payload.
    pub async fn call(&self, request: &[u8]) -> Result<Bytes, TcpJsonError> {
        let frame = self.codec.encode(request).map_err(TcpJsonError::Encode)?;
        let node = self.pick();
        let conn = match self.take_idle(node) {
            Some(conn) => conn,
            None => self.connect_from(node).await.map_err(TcpJsonError::Connect)?,
        };
        let first = match self.exchange(conn, &frame).await {
            Ok(reply) => return non_empty(reply),
            Err(Failure::Frame(e)) => return Err(TcpJsonError::Protocol(e)),
            Err(failure) => failure,
        };
        tracing::debug!(%first, "upstream exchange failed; resending on a new connection");
        let second = async {
            let conn = self.connect_from(self.pick()).await.map_err(Failure::Connect)?;
            self.exchange(conn, &frame).await
        };
        match second.await {
            Ok(reply) => non_empty(reply),
            Err(failure) if first.is_timeout() => Err(TcpJsonError::RetryAfterTimeout(failure)),
            Err(failure) => Err(TcpJsonError::SecondRequest(failure)),
        }
    }

    /// Writes `frame`, reads one reply frame, and pools the connection if it may serve again.
    async fn exchange(&self, mut conn: Conn, frame: &[u8]) -> Result<Bytes, Failure> {
        let send = async {
            conn.stream.write_all(frame).await?;
            conn.stream.flush().await
        };
        match with_timeout(self.config.send_timeout, send).await {
            Some(sent) => sent.map_err(Failure::Io)?,
            None => return Err(Failure::SendTimeout),
        }
        let read = read_frame(&mut conn.stream, &self.codec);
        let (reply, clean) =
            with_timeout(self.config.read_timeout, read).await.ok_or(Failure::ReadTimeout)??;
        conn.requests += 1;
        // Bytes past the reply would be read as the next request's answer: never reuse it then.
        if clean {
            self.put_idle(conn);
        }
        Ok(reply)
    }

    /// The next node, round-robin.
    fn pick(&self) -> usize {
        let node = self.next.get() % self.nodes.len();
        self.next.set(node + 1);
        node
    }

    fn take_idle(&self, node: usize) -> Option<Conn> {
        let mut idle = self.idle.borrow_mut();
        let pool = idle.get_mut(node)?;
        while let Some(conn) = pool.pop() {
            if conn.since.elapsed() < self.config.idle_timeout {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, mut conn: Conn) {
        if conn.requests >= self.config.pool_requests {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let Some(pool) = idle.get_mut(conn.node) else {
            return;
        };
        pool.retain(|c| c.since.elapsed() < self.config.idle_timeout);
        if pool.len() < self.config.pool_size {
            conn.since = Instant::now();
            pool.push(conn);
        }
    }

    /// Connects to `first`, or the nodes after it, up to `retries` picks; the last error if
    /// none accepts.
    async fn connect_from(&self, first: usize) -> io::Result<Conn> {
        let picks = self.config.retries.unwrap_or(self.nodes.len()).max(1);
        let mut last = io::Error::new(io::ErrorKind::NotConnected, "no node tried");
        for i in 0..picks {
            let node = (first + i) % self.nodes.len();
            match self.connect(node).await {
                Ok(stream) => {
                    return Ok(Conn { stream, node, requests: 0, since: Instant::now() });
                }
                Err(e) => {
                    let Node { host, port } = &self.nodes[node];
                    tracing::debug!(%host, port, error = %e, "upstream connect failed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn connect(&self, node: usize) -> io::Result<TcpStream> {
        let Node { host, port } = &self.nodes[node];
        let addr = resolve(host, *port)?;
        let stream = TcpStream::connect_timeout(addr, self.config.connect_timeout).await?;
        // A failure to disable Nagle costs latency, not correctness.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// Reads one frame: its payload, and whether the stream held nothing past it.
async fn read_frame(stream: &mut TcpStream, codec: &Codec) -> Result<(Bytes, bool), Failure> {
    let mut buf = vec![0u8; 512];
    let mut filled = 0;
    loop {
        if let Some((_, used)) = codec.decode(&buf[..filled]).map_err(Failure::Frame)? {
            let clean = used == filled;
            buf.truncate(used);
            return Ok((Bytes::from(buf).slice(HEADER_LEN..), clean));
        }
        // The whole frame once its header is read (checked against `max_frame` by `header`).
        if let Some(len) = codec.header(&buf[..filled]).map_err(Failure::Frame)? {
            buf.resize(buf.len().max(HEADER_LEN + len), 0);
        }
        let n = stream.read(&mut buf[filled..]).await.map_err(Failure::Io)?;
        if n == 0 {
            return Err(Failure::Closed);
        }
        filled += n;
    }
}

fn non_empty(reply: Bytes) -> Result<Bytes, TcpJsonError> {
    if reply.is_empty() {
        Err(TcpJsonError::Empty)
    } else {
        Ok(reply)
    }
}

fn parse_node(node: &str) -> Result<Node, SetupError> {
    let bad = || SetupError::BadNode(node.to_string());
    let (host, port) = node.rsplit_once(':').ok_or_else(bad)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Node { host: host.to_string(), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_parse_as_host_port() {
        let node = parse_node("[::1]:9000").expect("v6");
        assert_eq!((node.host.as_str(), node.port), ("::1", 9000));
        let node = parse_node("upstream.local:80").expect("name");
        assert_eq!((node.host.as_str(), node.port), ("upstream.local", 80));
        for bad in ["nohost", ":80", "h:port", "h:70000"] {
            assert!(parse_node(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TcpJsonClient::new::<&str>(&[], TcpJsonConfig::default()).err(),
            Some(SetupError::NoNodes)
        );
    }

    #[test]
    fn errors_carry_apisix_codes() {
        let closed = || Failure::Closed;
        assert_eq!(TcpJsonError::Connect(io::ErrorKind::ConnectionRefused.into()).code(), 5021);
        assert_eq!(TcpJsonError::RetryAfterTimeout(closed()).code(), 5022);
        assert_eq!(TcpJsonError::SecondRequest(closed()).code(), 5023);
        assert_eq!(TcpJsonError::Empty.code(), 5024);
        assert_eq!(TcpJsonError::Empty.status(), 502);
        let too_long = FrameError::TooLong { len: 2, max: 1 };
        assert_eq!(TcpJsonError::Encode(too_long).status(), 500);
    }

    #[test]
    fn timeouts_are_told_apart() {
        assert!(Failure::ReadTimeout.is_timeout());
        assert!(Failure::Io(io::ErrorKind::TimedOut.into()).is_timeout());
        assert!(!Failure::Closed.is_timeout());
    }
}
