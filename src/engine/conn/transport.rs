//! How a connection's bytes meet its socket: as they are ([`Plain`]), or through TLS
//! (`tls::Tls`). The driver is generic over the transport, so a plain connection pays nothing
//! for TLS existing: no branch per write, no field in its task.

use super::{queue::Outbound, sys};
use crate::metrics::Stats;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::{
    io::{self, IoSlice},
    os::fd::AsRawFd,
    pin::Pin,
    task::{Context, Poll},
};

/// Frames gathered into one `sendmsg`.
pub const MAX_IOVECS: usize = 64;

/// A connection's way to its socket. Implementations do the I/O the driver asks for and
/// register the task's interest with glommio when the socket is not ready.
pub trait Transport: Unpin + 'static {
    /// Writes queued frames until the queue is empty (Ready) or the socket is full (Pending,
    /// with the task registered for writability).
    fn poll_flush(
        &mut self,
        stream: &mut TcpStream,
        out: &mut Outbound,
        stats: &mut Stats,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>>;

    /// Reads client bytes into `buf`; `Ok(0)` at the end of the stream. Pending registers the
    /// task for readability.
    fn poll_read(
        &mut self,
        stream: &mut TcpStream,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>>;

    /// Bytes of its own the transport still has to send (a TLS alert or ticket).
    fn has_output(&self) -> bool {
        false
    }

    /// Our close frame has gone: say goodbye at this layer too (TLS close_notify), best
    /// effort, without waiting.
    fn finish(&mut self, _stream: &TcpStream) {}
}

/// Bytes as they are. Zero-sized: a plain connection's task is as small as it was.
#[derive(Debug, Default, Clone, Copy)]
pub struct Plain;

impl Transport for Plain {
    fn poll_flush(
        &mut self,
        stream: &mut TcpStream,
        out: &mut Outbound,
        stats: &mut Stats,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = out.gather(&mut slices);
            let sent = match send(stream, &slices[..n], cx) {
                Poll::Ready(Ok(sent)) => sent,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            stats.writes += 1;
            stats.bytes_out += sent as u64;
            out.advance(sent);
        }
    }

    fn poll_read(
        &mut self,
        stream: &mut TcpStream,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        Pin::new(stream).poll_read(cx, buf)
    }
}

/// Sends `slices` in one `sendmsg`; when the socket is full, registers for writability through
/// glommio (which may write the first slice itself).
pub fn send(
    stream: &mut TcpStream,
    slices: &[IoSlice<'_>],
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    loop {
        return match sys::send_vectored(stream.as_raw_fd(), slices) {
            Ok(sent) => Poll::Ready(Ok(sent)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let front = slices.iter().find(|s| !s.is_empty()).map_or(&[][..], |s| &s[..]);
                Pin::new(stream).poll_write(cx, front)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Poll::Ready(Err(e)),
        };
    }
}
