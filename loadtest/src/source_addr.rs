//! Spreading client connections over 127.0.0.x source addresses once one address's port range is used up.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A quarter of the kernel's ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range).
/// connect() takes only every other port of the range and scans it linearly for a free one, so
/// filling one source address's share makes each further connect slower (quadratic overall).
/// Moving on to the next 127.0.0.x early keeps connects cheap.
pub fn default_conns_per_source() -> usize {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok().and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<usize>().ok());
            Some((it.next()??, it.next()??))
        });
    match range {
        Some((lo, hi)) if hi > lo => ((hi - lo + 1) / 4).max(1000),
        _ => 7_000,
    }
}

/// Source address to bind connection number `index` to, or `None` to let the kernel choose.
/// Only used when the target is IPv4 loopback: connection i uses 127.0.0.(1 + i / per_source).
pub fn source_for(target: &SocketAddr, index: usize, per_source: usize) -> Option<SocketAddr> {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            let k = index / per_source.max(1);
            let host = 1 + (k % 254) as u8;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)), 0))
        }
        _ => None,
    }
}

/// Defer the local port choice from bind() to connect(): bind(port 0) searches the ephemeral range
/// for a port unused by any socket (slow once thousands are taken); connect() only needs the
/// 4-tuple to be unique.
pub fn bind_address_no_port(sock: &tokio::net::TcpSocket) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: valid socket fd, and a pointer/length pair for a c_int that outlives the call.
    // Failure (older kernel) only means the slower bind-time port search.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_over_loopback_sources() {
        let t: SocketAddr = "127.0.0.1:6001".parse().unwrap_or_else(|_| unreachable!());
        let ip = |i| source_for(&t, i, 100).map(|a| a.ip().to_string());
        assert_eq!(ip(0).as_deref(), Some("127.0.0.1"));
        assert_eq!(ip(99).as_deref(), Some("127.0.0.1"));
        assert_eq!(ip(100).as_deref(), Some("127.0.0.2"));
        assert_eq!(ip(250).as_deref(), Some("127.0.0.3"));
        let v6: SocketAddr = "[::1]:6001".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(source_for(&v6, 500, 100), None);
    }
}
