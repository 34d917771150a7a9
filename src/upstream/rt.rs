//! What hyper needs from a runtime, given by glommio: its I/O traits over any futures-io stream
//! (a glommio socket, or rustls over one), an executor for the HTTP/2 connection and stream
//! tasks, plus what every transport shares: reading a body up to a cap, a timeout, resolving.
//!
//! hyper's pooled clients and its `rt::Timer` want `Send` futures and timers; glommio's tasks and
//! timers are not `Send`, so the transports keep their own pools and wrap calls in
//! [`with_timeout`] instead. hyper 1 accepts a `!Send` executor for HTTP/2 ([`LocalExec`]).

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use std::{
    cell::Cell,
    future::Future,
    io,
    net::{SocketAddr, ToSocketAddrs},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

/// Spawns hyper's HTTP/2 background tasks on the current glommio executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        glommio::spawn_local(future).detach();
    }
}

/// hyper's I/O traits over a futures-io stream, replaying `prefix` (bytes already read from the
/// stream, e.g. a connection preface) before reading the stream itself. When `activity` is set,
/// every read or write that moves bytes stamps it, for an idle watchdog.
pub struct Io<S> {
    stream: S,
    prefix: Vec<u8>,
    at: usize,
    activity: Option<Rc<Cell<Instant>>>,
}

impl<S> Io<S> {
    pub fn new(stream: S) -> Io<S> {
        Io { stream, prefix: Vec::new(), at: 0, activity: None }
    }

    pub fn with_prefix(stream: S, prefix: Vec<u8>, activity: Rc<Cell<Instant>>) -> Io<S> {
        Io { stream, prefix, at: 0, activity: Some(activity) }
    }

    fn stamp(&self) {
        if let Some(activity) = &self.activity {
            activity.set(Instant::now());
        }
    }
}

impl<S: AsyncRead + Unpin> hyper::rt::Read for Io<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let mut chunk = [0u8; 8192];
        let want = buf.remaining().min(chunk.len());
        match Pin::new(&mut this.stream).poll_read(cx, &mut chunk[..want]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&chunk[..n]);
                this.stamp();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for Io<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(_)) = written {
            this.stamp();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_close(cx)
    }
}

/// `Some(output)`, or `None` if `duration` passed first (the future is then dropped).
pub async fn with_timeout<F: Future>(duration: Duration, future: F) -> Option<F::Output> {
    let expire = async {
        glommio::timer::Timer::new(duration).await;
        None
    };
    futures_lite::future::or(async { Some(future.await) }, expire).await
}

/// The first address of `host:port`, with the blocking system resolver (immediate for an IP
/// literal). Called only when a new connection is opened, which keep-alive makes rare.
pub fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    let not_found = || io::Error::new(io::ErrorKind::NotFound, "no address");
    (host, port).to_socket_addrs().and_then(|mut addrs| addrs.next().ok_or_else(not_found))
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("body: {0}")]
    Body(#[from] hyper::Error),
}

/// Reads a whole body and its trailers, refusing one whose announced length (Content-Length)
/// or running size passes `limit` before buffering past it. On error the rest is left unread.
pub async fn collect(
    mut body: Incoming,
    limit: usize,
) -> Result<(Bytes, Option<http::HeaderMap>), CollectError> {
    let announced = body.size_hint().lower();
    if announced > limit as u64 {
        return Err(CollectError::TooLarge(limit));
    }
    let mut buf = BytesMut::with_capacity(announced as usize);
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            Ok(data) if buf.len() + data.len() > limit => {
                return Err(CollectError::TooLarge(limit))
            }
            Ok(data) => buf.extend_from_slice(&data),
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Ok((buf.freeze(), trailers))
}
