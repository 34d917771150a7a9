//! An accepted connection as the edge reads and writes it before it becomes a WebSocket: plain
//! TCP, or TLS over it when the port is TLS. Both read and write through futures' I/O traits;
//! a WebSocket then hands its socket (and TLS session) to the engine's driver.

use crate::engine::conn::driver;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;
use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

/// A client connection, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: the TLS session is large, and a plain connection should not pay for its size.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket under it.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// Ends the connection politely: TLS close_notify, then the socket's write side, then
    /// what the client still sends is read and dropped for a moment (see `driver::linger`).
    pub async fn close(self) {
        match self {
            Stream::Plain(s) => driver::linger(s).await,
            Stream::Tls(mut s) => {
                let _ = s.close().await;
                let (tcp, _) = s.into_inner();
                driver::linger(tcp).await;
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}
