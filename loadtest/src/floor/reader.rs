//! The reader of `floor --sockets N`: accepts N loopback connections and drains them all with
//! epoll until told to stop. It runs as a child process (`pushgate-load floor-reader`, hidden) so
//! that the sender and the reader each hold N descriptors, not 2N in one process.
//!
//! Protocol on its stdout: `port P` once listening, `ready` once all N are accepted, and after
//! the stop one JSON line of [`ReaderStats`]. Any byte on (or the end of) its stdin means stop.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct ReaderArgs {
    /// Connections to accept.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500_000))]
    pub sockets: u32,
    /// CPU to pin to (-1: none).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub cpu: i32,
    /// Busy-poll: epoll_wait with a zero timeout.
    #[arg(long)]
    pub spin: bool,
    /// Give up after this long (s).
    #[arg(long, default_value_t = 600)]
    pub max_secs: u64,
}

/// What the reader did between the first timed frame and the stop.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ReaderStats {
    pub cpu_ns: u64,
    pub reads: u64,
    pub epoll_waits: u64,
    pub bytes: u64,
}

/// `pushgate-load floor-reader`: the child process.
pub fn main(args: &ReaderArgs) -> std::process::ExitCode {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number; the reader dies with its parent.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    crate::procstat::raise_nofile_limit();
    let stdin = std::io::stdin().as_raw_fd();
    match serve(args, stdin, &mut std::io::stdout()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushgate-load floor-reader: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Listens on 127.0.0.1, accepts `args.sockets` connections, drains them until `control`
/// becomes readable, then writes its statistics to `out`.
pub fn serve(args: &ReaderArgs, control: RawFd, out: &mut dyn Write) -> anyhow::Result<()> {
    super::pin_to(args.cpu);
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // std listens with a backlog of 128; the sender connects N in a row.
    // SAFETY: listen(2) on a socket we own; calling it again only changes the backlog.
    unsafe { libc::listen(listener.as_raw_fd(), 4096) };
    writeln!(out, "port {}", listener.local_addr()?.port())?;
    out.flush()?;
    let mut conns = Vec::with_capacity(args.sockets as usize);
    for _ in 0..args.sockets {
        if Instant::now() > deadline {
            anyhow::bail!("accept phase took over {} s", args.max_secs);
        }
        let (s, _) = listener.accept()?;
        s.set_nonblocking(true)?;
        conns.push(OwnedFd::from(s));
    }
    drop(listener);
    let epoll = Epoll::new()?;
    for (i, c) in conns.iter().enumerate() {
        epoll.add(c.as_raw_fd(), i as u64)?;
    }
    epoll.add(control, u64::MAX)?;
    writeln!(out, "ready")?;
    out.flush()?;
    let stats = drain(&epoll, &conns, args.spin, deadline)?;
    writeln!(out, "{}", serde_json::to_string(&stats)?)?;
    out.flush()?;
    Ok(())
}

/// Reads whatever epoll reports until the control descriptor is readable.
fn drain(
    epoll: &Epoll,
    conns: &[OwnedFd],
    spin: bool,
    deadline: Instant,
) -> anyhow::Result<ReaderStats> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut stats = ReaderStats::default();
    let mut mark: Option<u64> = None;
    let mut open = conns.len();
    loop {
        let ready = epoll.wait(&mut events, if spin { 0 } else { 100 })?;
        if ready == 0 && Instant::now() > deadline {
            anyhow::bail!("no stop before the deadline");
        }
        stats.epoll_waits += 1;
        for ev in &events[..ready] {
            let key = ev.u64;
            if key == u64::MAX {
                stats.cpu_ns = mark.map_or(0, |m| super::thread_cpu_ns() - m);
                return Ok(stats);
            }
            let fd = conns[key as usize].as_raw_fd();
            // SAFETY: `buf` is a valid writable buffer of its length; `fd` is an open socket.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                let n = n as usize;
                stats.reads += 1;
                stats.bytes += n as u64;
                if mark.is_none() && buf[n - 1] == 1 {
                    // The first timed frame (warm-up frames end in 0): count from here.
                    mark = Some(super::thread_cpu_ns());
                    stats = ReaderStats { reads: 1, bytes: n as u64, ..ReaderStats::default() };
                }
            } else if n == 0 {
                epoll.delete(fd)?;
                open -= 1;
                if open == 0 {
                    anyhow::bail!("every sender socket closed before the stop");
                }
            }
        }
    }
}

/// A minimal level-triggered epoll set.
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> std::io::Result<Epoll> {
        // SAFETY: epoll_create1 has no pointer arguments.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(Epoll(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    fn add(&self, fd: RawFd, key: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: key };
        // SAFETY: `ev` is a valid epoll_event; both descriptors are open.
        let rc = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn delete(&self, fd: RawFd) -> std::io::Result<()> {
        // SAFETY: EPOLL_CTL_DEL ignores the event pointer (null is allowed since Linux 2.6.9).
        let rc = unsafe {
            libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut())
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> std::io::Result<usize> {
        // SAFETY: `events` is a valid writable array of its length.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == std::io::ErrorKind::Interrupted { Ok(0) } else { Err(e) };
        }
        Ok(n as usize)
    }
}

/// Reads one line from `r` (for the sender reading the reader's protocol).
pub fn read_line(r: &mut dyn Read) -> anyhow::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte)? {
            0 => anyhow::bail!("the reader exited (said {:?})", String::from_utf8_lossy(&line)),
            _ if byte[0] == b'\n' => return Ok(String::from_utf8_lossy(&line).into_owned()),
            _ => line.push(byte[0]),
        }
    }
}
