//! The task that drives one WebSocket connection. One task per connection polls both
//! directions: it drains the outbound queue with vectored writes (all queued frames in as few
//! syscalls as possible, once per wake-up however many publications arrived), reads into the
//! shard's shared buffer, and hands complete messages to the dialect.

use super::{
    queue::Frame,
    sys,
    transport::{Plain, Transport},
    Close, ConnKey, DialectTag,
};
use crate::{
    engine::shard::Shard,
    ws::frame::{self, FrameError, Reassembly},
};
use futures_lite::AsyncReadExt;
use glommio::{net::TcpStream, timer::Timer};
use std::{
    future::{poll_fn, Future},
    io,
    net::Shutdown,
    os::fd::AsRawFd,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::Duration,
};

/// Read-and-dispatch rounds before the task yields to others.
const BUDGET: usize = 16;
/// How long a closing connection may take to flush and hang up.
const LINGER: Duration = Duration::from_secs(2);

/// Why the connection's loop ended.
enum Exit {
    /// We sent a close frame (ours or an answer to the client's).
    Closed,
    /// The peer vanished or the socket failed.
    Gone,
    /// The close took longer than the sweep allows (the peer does not read): drop the socket
    /// at once, with what the kernel still holds for it.
    Abandoned,
}

struct Driver<T> {
    shard: Rc<Shard>,
    stream: TcpStream,
    /// Plain or TLS; zero-sized when plain.
    transport: T,
    key: ConnKey,
    /// The dialect its messages go to.
    tag: DialectTag,
    /// A frame or message cut by a read, boxed so the many connections without one pay a
    /// pointer for it rather than two empty buffers.
    partial: Option<Box<Partial>>,
    close_sent: bool,
}

/// What a connection keeps between reads when a frame or a fragmented message is unfinished.
struct Partial {
    /// The start of a frame that has not fully arrived.
    pending: Vec<u8>,
    /// The fragments of a message that has not completed.
    reassembly: Reassembly,
    /// When the unfinished frame or message has been held too long (`message_assembly_timeout_secs`).
    deadline: Timer,
}

impl Partial {
    fn new(within: Duration, reassembly: Reassembly) -> Partial {
        Partial { pending: Vec::new(), reassembly, deadline: Timer::new(within) }
    }
}

/// Runs an accepted, registered plain connection until it closes (see [`run_with`]).
pub fn run(
    shard: Rc<Shard>,
    stream: TcpStream,
    key: ConnKey,
    tag: DialectTag,
    first_bytes: Vec<u8>,
) -> impl Future<Output = ()> {
    run_with(shard, stream, Plain, key, tag, first_bytes)
}

/// Runs an accepted, registered connection over `transport` until it closes, then removes it
/// from the shard.
///
/// Bytes that came with the upgrade are handled here, before the task exists, and the task's
/// future holds only the driver: it lives as long as the connection, so its size is paid per
/// idle connection (432 bytes as an `async fn` holding its arguments too, 176 then; the
/// dialect's message handler is now found by the tag instead of a function pointer).
pub fn run_with<T: Transport>(
    shard: Rc<Shard>,
    stream: TcpStream,
    transport: T,
    key: ConnKey,
    tag: DialectTag,
    mut first_bytes: Vec<u8>,
) -> impl Future<Output = ()> {
    let mut driver =
        Driver { shard, stream, transport, key, tag, partial: None, close_sent: false };
    if !first_bytes.is_empty() {
        if let Err(code) = driver.on_bytes(&mut first_bytes) {
            driver.request_close(code);
        }
    }
    drop(first_bytes);
    async move {
        let exit = poll_fn(|cx| driver.poll(cx)).await;
        driver.shard.remove_conn(driver.key);
        match exit {
            Exit::Closed => {
                driver.transport.finish(&driver.stream);
                Box::pin(linger(driver.stream)).await;
            }
            Exit::Abandoned => abort(driver.stream),
            Exit::Gone => {}
        }
    }
}

impl<T: Transport> Driver<T> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Exit> {
        for _ in 0..BUDGET {
            if self.abandoned() {
                return Poll::Ready(Exit::Abandoned);
            }
            self.start_close_if_asked();
            let flushed = match self.poll_flush(cx) {
                Poll::Ready(Err(_)) => return Poll::Ready(Exit::Gone),
                Poll::Ready(Ok(())) if self.close_sent => return Poll::Ready(Exit::Closed),
                Poll::Ready(Ok(())) => true,
                // The socket is full: glommio wakes the task when it is writable.
                Poll::Pending => false,
            };
            if self.close_sent {
                // Waiting to write the close frame; the sweep wakes the task to drop it if
                // the peer never takes it.
                self.park(cx);
                return Poll::Pending;
            }
            self.poll_assembly_deadline(cx);
            match self.poll_read(cx) {
                Poll::Ready(Ok(true)) => continue,
                Poll::Ready(Ok(false)) | Poll::Ready(Err(_)) => return Poll::Ready(Exit::Gone),
                // Nothing to read: glommio wakes the task when there is.
                Poll::Pending => {}
            }
            // Parked on the socket, both ways, unless something new is to be written: a close
            // asked while reading, or a transport's own bytes after a full queue was written.
            if self.park_unless_work(cx, flushed) {
                return Poll::Pending;
            }
        }
        // More input may be waiting: let other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Leaves the task's waker on the slab entry, for whoever queues a frame or closes it.
    fn park(&self, cx: &Context<'_>) {
        let mut state = self.shard.state.borrow_mut();
        if let Some(conn) = state.conns.get_mut(self.key.index()) {
            conn.waker = Some(cx.waker().clone());
        }
    }

    /// Parks (true) unless the queue was written out (`flushed`) and something new waits to
    /// be written: a close asked meanwhile, frames, or the transport's own bytes.
    fn park_unless_work(&self, cx: &Context<'_>, flushed: bool) -> bool {
        let mut state = self.shard.state.borrow_mut();
        let Some(conn) = state.conns.get_mut(self.key.index()) else { return true };
        let closing = conn.closing.is_some() && !self.close_sent;
        if flushed && (closing || !conn.out.is_empty() || self.transport.has_output()) {
            return false;
        }
        conn.waker = Some(cx.waker().clone());
        true
    }

    /// Closes with 1008 a connection that has held an unfinished frame or message for too long.
    fn poll_assembly_deadline(&mut self, cx: &mut Context<'_>) {
        let Some(partial) = &mut self.partial else { return };
        if Pin::new(&mut partial.deadline).poll(cx).is_ready() {
            self.partial = None;
            self.request_close(Close::ASSEMBLY_TIMEOUT);
        }
    }

    /// If the shard asked this connection to close, queue the close frame once.
    fn start_close_if_asked(&mut self) {
        if self.close_sent {
            return;
        }
        let mut state = self.shard.state.borrow_mut();
        let Some(conn) = state.conns.get_mut(self.key.index()) else {
            return;
        };
        if let Some(close) = &conn.closing {
            conn.out.push_unbounded(Frame::new(frame::close(close.code, &close.reason)));
            self.close_sent = true;
        }
    }

    fn abandoned(&self) -> bool {
        let state = self.shard.state.borrow();
        state.conns.get(self.key.index()).is_none_or(|c| c.abandoned)
    }

    fn request_close(&mut self, close: Close) {
        if let Some(conn) = self.shard.state.borrow_mut().conns.get_mut(self.key.index()) {
            conn.closing.get_or_insert_with(|| Box::new(close));
        }
    }

    /// Writes queued frames until the queue is empty (Ready) or the socket is full (Pending).
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shard.state.borrow_mut();
        let state = &mut *state;
        let Some(conn) = state.conns.get_mut(self.key.index()) else {
            return Poll::Ready(Ok(()));
        };
        self.transport.poll_flush(&mut self.stream, &mut conn.out, &mut state.stats, cx)
    }

    /// Reads once into the shard's buffer and dispatches what completed. Ok(false) on EOF.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let shard = self.shard.clone();
        let mut scratch = shard.scratch.borrow_mut();
        let n = match self.transport.poll_read(&mut self.stream, &mut scratch[..], cx) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        if n == 0 {
            return Poll::Ready(Ok(false));
        }
        if let Err(code) = self.on_bytes(&mut scratch[..n]) {
            self.request_close(code);
        }
        Poll::Ready(Ok(true))
    }

    fn on_bytes(&mut self, data: &mut [u8]) -> Result<(), Close> {
        {
            let now = self.shard.now();
            let mut state = self.shard.state.borrow_mut();
            if let Some(conn) = state.conns.get_mut(self.key.index()) {
                conn.last_seen = now;
                conn.ping_sent = 0;
            }
        }
        let Some(mut partial) = self.partial.take() else {
            // The common case: whole frames, nothing kept (and no timer made).
            let mut reassembly = Reassembly::default();
            let used = self.consume(data, &mut reassembly)?;
            if used < data.len() || !reassembly.is_idle() {
                let within = Duration::from_secs(self.shard.config.message_assembly_timeout_secs);
                let mut partial = Partial::new(within, reassembly);
                partial.pending.extend_from_slice(&data[used..]);
                self.partial = Some(Box::new(partial));
            }
            return Ok(());
        };
        if partial.pending.is_empty() {
            let used = self.consume(data, &mut partial.reassembly)?;
            partial.pending.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut partial.pending);
            buf.extend_from_slice(data);
            let used = self.consume(&mut buf, &mut partial.reassembly)?;
            buf.drain(..used);
            if !buf.is_empty() {
                partial.pending = buf;
            }
        }
        if !partial.pending.is_empty() || !partial.reassembly.is_idle() {
            self.partial = Some(partial);
        }
        Ok(())
    }

    /// Decodes and dispatches every complete frame in `buf`; returns the bytes consumed.
    fn consume(&mut self, buf: &mut [u8], reassembly: &mut Reassembly) -> Result<usize, Close> {
        let max = self.shard.config.max_message_bytes;
        let Some(dialect) = self.shard.dialect(self.tag).cloned() else {
            return Err(Close::PROTOCOL_ERROR);
        };
        let mut used = 0;
        loop {
            match frame::decode(&mut buf[used..], reassembly, max) {
                Ok(None) => break,
                Ok(Some((n, message))) => {
                    used += n;
                    if let Some(message) = message {
                        dialect.on_message(&self.shard, self.key, message)?;
                    }
                }
                Err(FrameError::TooBig) => return Err(Close::TOO_BIG),
                Err(FrameError::NotUtf8) => return Err(Close::INVALID_DATA),
                Err(_) => return Err(Close::PROTOCOL_ERROR),
            }
        }
        reassembly.release();
        Ok(used)
    }
}

/// After our close frame: stop writing, drain what the client still sends until it hangs up
/// (or `LINGER` passes), so the kernel does not reset the connection under unread data. A peer
/// that has not hung up by then and leaves bytes unacknowledged is reset, so the kernel does
/// not keep them for it.
pub async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write).await;
    let drained = glommio::timer::timeout(LINGER, async {
        let mut sink = [0u8; 256];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
        Ok(())
    })
    .await;
    if drained.is_err() && sys::unsent(stream.as_raw_fd()).unwrap_or(0) > 0 {
        abort(stream);
    }
}

/// Drops a socket at once: the kernel discards what it still holds for it and resets the peer.
pub fn abort(stream: TcpStream) {
    let _ = sys::set_abortive_close(stream.as_raw_fd());
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output_size<A, B, C, D, E, F, R>(_: fn(A, B, C, D, E, F) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// An idle connection pays for its task: glommio's 48-byte header and this future, which
    /// stays in mimalloc's 224-byte bin (BENCHMARKS.md, run 4). TLS must not grow the plain one.
    #[test]
    fn a_plain_connections_task_fits_in_176_bytes() {
        let plain = output_size(run_with::<Plain>);
        assert!(plain <= 176, "{plain}");
        assert!(output_size(run_with::<super::super::tls::Tls>) <= 176);
    }
}
