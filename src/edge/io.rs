//! hyper's I/O traits over an edge stream, replaying the request bytes already read while the
//! shard decided the connection was not a WebSocket upgrade, and telling the connection's
//! [`Clock`] when a request head starts arriving.

use super::stream::Stream;
use futures_lite::{AsyncRead, AsyncWrite};
use std::{
    cell::Cell,
    io,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::Instant,
};

/// Where a keep-alive REST connection is, for its watchdog (`http::serve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Between requests: silence is limited by `http_idle_timeout_secs`.
    Idle,
    /// A request head started arriving at this time: it has the first head's deadline.
    Head(Instant),
    /// A request is being served: its body has its own deadline (`rest_body_timeout_ms`).
    Busy,
}

/// The phase of a connection and when bytes last moved.
#[derive(Debug)]
pub struct Clock {
    pub phase: Cell<Phase>,
    pub last_io: Cell<Instant>,
}

impl Clock {
    /// A connection whose first head has arrived (it was read before hyper got it).
    pub fn new() -> Rc<Clock> {
        let now = Instant::now();
        Rc::new(Clock { phase: Cell::new(Phase::Head(now)), last_io: Cell::new(now) })
    }

    fn read(&self) {
        let now = Instant::now();
        self.last_io.set(now);
        if self.phase.get() == Phase::Idle {
            self.phase.set(Phase::Head(now));
        }
    }
}

/// An edge stream with a prefix of bytes to replay first.
pub struct HyperIo {
    stream: Stream,
    prefix: Vec<u8>,
    at: usize,
    clock: Rc<Clock>,
}

impl HyperIo {
    pub fn new(stream: Stream, prefix: Vec<u8>, clock: Rc<Clock>) -> HyperIo {
        HyperIo { stream, prefix, at: 0, clock }
    }

    pub fn into_stream(self) -> Stream {
        self.stream
    }
}

impl hyper::rt::Read for HyperIo {
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
                if n > 0 {
                    this.clock.read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for HyperIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            if n > 0 {
                this.clock.last_io.set(Instant::now());
            }
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
