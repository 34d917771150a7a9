//! The TLS transport of a WebSocket connection (wss): rustls' server connection over the
//! glommio socket. Queued frames are encrypted in records of several frames at once (rustls
//! joins a vectored write into one record up to 16 KB) and leave in one `sendmsg`; reads go
//! straight from the socket into rustls' buffer, and the plaintext into the shard's buffer.
//!
//! Memory: rustls keeps a 4 KiB read buffer and the session keys per connection (a few KiB in
//! all, against about one for a plain connection), and at most [`SEND_LIMIT`] bytes of
//! ciphertext waiting for a slow reader, on top of the outbound queue's limit.

use super::{
    queue::Outbound,
    transport::{send, Transport, MAX_IOVECS},
};
use crate::metrics::Stats;
use futures_lite::AsyncRead;
use futures_rustls::rustls::ServerConnection;
use glommio::net::TcpStream;
use std::{
    io::{self, IoSlice, Read, Write},
    os::fd::AsRawFd,
    pin::Pin,
    task::{Context, Poll},
};

/// Ciphertext rustls may hold for a connection before the queue waits for the socket.
pub const SEND_LIMIT: usize = 16 * 1024;

/// A TLS session, boxed: the task holds a pointer to it.
pub struct Tls(Box<ServerConnection>);

impl Tls {
    /// Wraps a session whose handshake is done.
    pub fn new(mut conn: ServerConnection) -> Tls {
        conn.set_buffer_limit(Some(SEND_LIMIT));
        Tls(Box::new(conn))
    }

    /// Sends what rustls has encrypted until it has nothing left (Ready) or the socket is full.
    fn poll_write_tls(
        &mut self,
        stream: &mut TcpStream,
        stats: &mut Stats,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.0.wants_write() {
            let mut sink = Sink { stream: &mut *stream, cx: &mut *cx };
            match self.0.write_tls(&mut sink) {
                Ok(sent) => {
                    stats.writes += 1;
                    stats.bytes_out += sent as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Transport for Tls {
    fn poll_flush(
        &mut self,
        stream: &mut TcpStream,
        out: &mut Outbound,
        stats: &mut Stats,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            match self.poll_write_tls(stream, stats, cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            if out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let taken = {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let n = out.gather(&mut slices);
                self.0.writer().write_vectored(&slices[..n])?
            };
            if taken == 0 {
                return Poll::Ready(Err(io::Error::other("TLS session took no bytes")));
            }
            out.advance(taken);
        }
    }

    fn poll_read(
        &mut self,
        stream: &mut TcpStream,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.0.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let mut source = Source { stream: &mut *stream, cx: &mut *cx };
            match self.0.read_tls(&mut source) {
                Ok(0) => return Poll::Ready(Ok(0)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
            if let Err(e) = self.0.process_new_packets() {
                // rustls queued an alert saying why; send it if the socket takes it now.
                let _ = self.0.write_tls(&mut NoWait(stream.as_raw_fd()));
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
        }
    }

    fn has_output(&self) -> bool {
        self.0.wants_write()
    }

    fn finish(&mut self, stream: &TcpStream) {
        self.0.send_close_notify();
        let mut sink = NoWait(stream.as_raw_fd());
        while self.0.wants_write() {
            if self.0.write_tls(&mut sink).is_err() {
                break;
            }
        }
    }
}

/// rustls' view of the socket for writing: vectored sends, WouldBlock once the task is
/// registered for writability.
struct Sink<'a, 'b> {
    stream: &'a mut TcpStream,
    cx: &'a mut Context<'b>,
}

impl Write for Sink<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match send(self.stream, bufs, self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// rustls' view of the socket for reading: WouldBlock once the task is registered for
/// readability.
struct Source<'a, 'b> {
    stream: &'a mut TcpStream,
    cx: &'a mut Context<'b>,
}

impl Read for Source<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.stream).poll_read(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// A last write that does not wait: whatever the socket takes now (an alert, close_notify).
struct NoWait(std::os::fd::RawFd);

impl Write for NoWait {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        super::sys::send_vectored(self.0, &[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        super::sys::send_vectored(self.0, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
