//! `floor --sockets N`: one frame per non-blocking send to N loopback sockets round robin, the
//! way a fan-out to N subscribers sends, with a reader process draining all N (see `reader`).
//! With many sockets each send touches a socket whose state is not in the cache, which the
//! one-pair floor does not show.

use super::reader::{self, ReaderArgs, ReaderStats};
use super::{set_last, FloorArgs, FloorReport, Timer};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The reader at the other end: its protocol streams and, for a child process, its handle.
struct ReaderLink {
    from: Box<dyn Read>,
    to: Box<dyn Write>,
    child: Option<std::process::Child>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn run(args: &FloorArgs, n: usize) -> anyhow::Result<FloorReport> {
    crate::procstat::raise_nofile_limit();
    let mut link = start_reader(args, n)?;
    let port: u16 = reader::read_line(&mut link.from)?
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("the reader did not say its port"))?;
    let per_source =
        args.conns_per_source.unwrap_or_else(crate::source_addr::default_conns_per_source);
    let socks = connect_all(n, port, per_source)?;
    anyhow::ensure!(reader::read_line(&mut link.from)? == "ready", "the reader is not ready");
    let pinned = super::pin_to(args.sender_cpu);
    let fds: Vec<i32> = socks.iter().map(|s| s.as_raw_fd()).collect();
    let mut report = FloorReport {
        scenario: "floor",
        params: Some(args.clone()),
        sockets: n as u64,
        pinned,
        ..FloorReport::default()
    };
    if args.uring_batch > 0 {
        super::uring::run(args, &fds, &mut report)?;
    } else {
        send_phase(args, &fds, &mut report)?;
    }
    // Let the reader drain what is in flight, then stop it and collect its figures.
    std::thread::sleep(std::time::Duration::from_millis(50));
    link.to.write_all(b"stop\n")?;
    link.to.flush()?;
    let stats: ReaderStats = serde_json::from_str(&reader::read_line(&mut link.from)?)?;
    drop(socks);
    finish_reader(link);
    report.reader_cpu_us_per_send = stats.cpu_ns as f64 / 1000.0 / report.sends.max(1) as f64;
    report.reader_recv_calls = stats.reads;
    report.reader_epoll_waits = stats.epoll_waits;
    report.bytes_sent = report.sends * args.frame_bytes as u64;
    report.what = format!(
        "CPU of the sending thread per frame, {} to {} loopback sockets round robin, reader {} on another process (includes the loopback receive path the kernel runs on the sender's CPU)",
        report.mode,
        n,
        if args.reader_spin { "busy-polling epoll" } else { "sleeping in epoll_wait" }
    );
    Ok(report)
}

/// Plain sends (`--frames-per-call 1`) or `sendmsg` with K iovecs: warm-up, then the timed phase.
fn send_phase(args: &FloorArgs, fds: &[i32], report: &mut FloorReport) -> anyhow::Result<()> {
    let k = args.frames_per_call as usize;
    let mut frame = vec![b'x'; args.frame_bytes as usize];
    let warm_calls = args.warmup.max(fds.len() as u64 * k as u64).div_ceil(k as u64);
    let calls = args.count.div_ceil(k as u64);
    set_last(&mut frame, 0);
    send_calls(fds, &frame, k, warm_calls);
    set_last(&mut frame, 1);
    let timer = Timer::start();
    let short = send_calls(fds, &frame, k, calls);
    let t = timer.finish();
    report.set_timed(&t, calls * k as u64, calls);
    report.would_block = short;
    report.mode = if k == 1 { "send".into() } else { format!("sendmsg x{k}") };
    Ok(())
}

/// Makes `calls` calls round robin over `fds`; each sends `k` copies of `frame` (one `send` when
/// k is 1, one `sendmsg` otherwise). Returns the calls that did not take everything.
fn send_calls(fds: &[i32], frame: &[u8], k: usize, calls: u64) -> u64 {
    let iov = vec![libc::iovec { iov_base: frame.as_ptr() as *mut _, iov_len: frame.len() }; k];
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut _;
    msg.msg_iovlen = k as _;
    let want = (frame.len() * k) as isize;
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    let mut short = 0;
    let mut i = 0;
    for _ in 0..calls {
        let fd = fds[i];
        i += 1;
        if i == fds.len() {
            i = 0;
        }
        // SAFETY: `frame` and `iov` (which points into `frame`) outlive the call; the kernel
        // only reads them.
        let sent = unsafe {
            if k == 1 {
                libc::send(fd, frame.as_ptr().cast(), frame.len(), flags)
            } else {
                libc::sendmsg(fd, &msg, flags)
            }
        };
        if sent != want {
            short += 1;
        }
    }
    short
}

/// Opens `n` TCP connections to 127.0.0.1:`port` from 127.0.0.(1 + i / per_source), with
/// TCP_NODELAY, then makes them non-blocking.
fn connect_all(n: usize, port: u16, per_source: usize) -> anyhow::Result<Vec<OwnedFd>> {
    let target = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let mut socks = Vec::with_capacity(n);
    for i in 0..n {
        let src = crate::source_addr::source_for(&target, i, per_source);
        let s = connect_one(port, src).map_err(|e| {
            anyhow::anyhow!("connection {i} of {n}: {e} (open-file limit: see `ulimit -n`)")
        })?;
        socks.push(s);
    }
    Ok(socks)
}

fn connect_one(port: u16, src: Option<SocketAddr>) -> std::io::Result<OwnedFd> {
    let check = |rc: i32| if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(rc) };
    // SAFETY: socket(2) has no pointer arguments.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    let int_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let opt = |level, name| {
        // SAFETY: `one` lives across the call and its size is passed with it.
        check(unsafe {
            libc::setsockopt(fd, level, name, (&one as *const libc::c_int).cast(), int_len)
        })
    };
    if let Some(SocketAddr::V4(src)) = src {
        // The port is chosen at connect time, per destination, not at bind time.
        opt(libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT)?;
        let sa = sockaddr(src);
        // SAFETY: `sa` is a valid sockaddr_in and its size is passed with it.
        check(unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), sa_len()) })?;
    }
    let sa = sockaddr(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    // SAFETY: `sa` is a valid sockaddr_in and its size is passed with it.
    check(unsafe { libc::connect(fd, (&sa as *const libc::sockaddr_in).cast(), sa_len()) })?;
    opt(libc::IPPROTO_TCP, libc::TCP_NODELAY)?;
    // SAFETY: fcntl on an open descriptor with integer arguments.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) })?;
    Ok(sock)
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    }
}

fn sa_len() -> libc::socklen_t {
    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
}

/// The reader as a child process (`pushgate-load floor-reader`); in unit tests, whose binary has
/// no such subcommand, as a thread speaking the same protocol over pipes.
fn start_reader(args: &FloorArgs, n: usize) -> anyhow::Result<ReaderLink> {
    let ra = ReaderArgs {
        sockets: n as u32,
        cpu: args.reader_cpu,
        spin: args.reader_spin,
        max_secs: 600,
    };
    if cfg!(test) {
        return start_reader_thread(ra);
    }
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("floor-reader")
        .arg("--sockets")
        .arg(n.to_string())
        .arg("--cpu")
        .arg(ra.cpu.to_string());
    if ra.spin {
        cmd.arg("--spin");
    }
    let mut child =
        cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn()?;
    let from = Box::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("no reader stdout"))?);
    let to = Box::new(child.stdin.take().ok_or_else(|| anyhow::anyhow!("no reader stdin"))?);
    Ok(ReaderLink { from, to, child: Some(child), thread: None })
}

fn start_reader_thread(ra: ReaderArgs) -> anyhow::Result<ReaderLink> {
    let (ctl_r, ctl_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let thread = std::thread::spawn(move || {
        let mut out = std::fs::File::from(out_w);
        if let Err(e) = reader::serve(&ra, ctl_r.as_raw_fd(), &mut out) {
            let _ = writeln!(out, "error {e:#}");
        }
    });
    Ok(ReaderLink {
        from: Box::new(std::fs::File::from(out_r)),
        to: Box::new(std::fs::File::from(ctl_w)),
        child: None,
        thread: Some(thread),
    })
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn finish_reader(link: ReaderLink) {
    drop(link.to);
    if let Some(mut child) = link.child {
        let _ = child.wait();
    }
    if let Some(t) = link.thread {
        let _ = t.join();
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::args;

    #[test]
    fn many_sockets_round_robin() {
        for (k, batch) in [(1, 0), (3, 0), (1, 8)] {
            let mut a = args(Some(50));
            a.frames_per_call = k;
            a.uring_batch = batch;
            let r = super::run(&a, 50);
            let Ok(r) = r else {
                panic!("floor --sockets 50 (k {k}, batch {batch}) failed: {r:?}")
            };
            assert_eq!(r.sockets, 50);
            assert!(r.sends >= 2_000, "{} frames", r.sends);
            assert_eq!(r.would_block, 0);
            assert!(r.sender_cpu_us_per_send > 0.0);
            assert!(r.reader_recv_calls > 0);
        }
    }
}
