//! The raw socket calls glommio does not offer: a vectored non-blocking send (the write half of
//! write coalescing: glommio writes one buffer at a time), SO_SNDBUF, an abortive close
//! (SO_LINGER 0) and the unsent byte count, and a listener with a chosen backlog and
//! SO_REUSEADDR (glommio's listener has a fixed backlog of 1024 and only SO_REUSEPORT).

use std::{io, io::IoSlice, os::fd::RawFd};

/// Sends `slices` in one `sendmsg(MSG_DONTWAIT | MSG_NOSIGNAL)`; `WouldBlock` when the socket
/// buffer is full.
pub fn send_vectored(fd: RawFd, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix (documented by std); sendmsg only reads it.
    msg.msg_iov = slices.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = slices.len() as _;
    // SAFETY: `msg` points at `slices`, which outlive the call; the kernel does not keep them.
    let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// A listening socket, with its descriptor (glommio's listener does not give it back).
pub struct Listener {
    pub inner: glommio::net::TcpListener,
    pub fd: RawFd,
}

/// A listening socket on `addr` with SO_REUSEADDR and SO_REUSEPORT (one per shard on the same
/// port, the kernel spreading connections) and `backlog` (capped by net.core.somaxconn).
pub fn listen(addr: std::net::SocketAddr, backlog: i32) -> io::Result<Listener> {
    use socket2::{Domain, Socket, Type};
    use std::os::fd::{FromRawFd, IntoRawFd};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    let fd = socket.into_raw_fd();
    // SAFETY: the descriptor is a bound, listening TCP socket that we own and hand over whole.
    let inner = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
    Ok(Listener { inner, fd })
}

/// Sets SO_SNDBUF (the kernel doubles it for bookkeeping).
pub fn set_send_buffer(fd: RawFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `value` lives across the call and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Makes the coming close abortive (SO_LINGER on, 0 s): the kernel drops unsent data and sends
/// a reset instead of keeping the socket, and its buffers, for a peer that never reads.
pub fn set_abortive_close(fd: RawFd) -> io::Result<()> {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `linger` lives across the call and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Bytes written to the socket that the peer has not acknowledged yet (SIOCOUTQ).
pub fn unsent(fd: RawFd) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ on a TCP socket) writes one int into `value`.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut value as *mut libc::c_int) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(usize::try_from(value).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{io::Read, os::fd::AsRawFd};

    #[test]
    fn several_slices_in_one_call() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        let parts = [IoSlice::new(b"ab"), IoSlice::new(b"cde"), IoSlice::new(b"f")];
        assert_eq!(send_vectored(client.as_raw_fd(), &parts).expect("send"), 6);
        let mut got = [0u8; 6];
        server.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"abcdef");
    }

    #[test]
    fn an_abortive_close_resets_the_peer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        assert_eq!(unsent(client.as_raw_fd()).expect("outq"), 0);
        set_abortive_close(client.as_raw_fd()).expect("linger");
        drop(client);
        let mut buf = [0u8; 1];
        let got = server.read(&mut buf);
        assert!(got.is_err(), "a reset, not a clean EOF: {got:?}");
    }
}
