//! The `floor` subcommand: CPU cost of one blocking `send(2)` of a small frame over loopback TCP.
//!
//! A connected 127.0.0.1 TCP pair (TCP_NODELAY on the sending side, as a push server sets it); a
//! reader thread drains the other end into a 64 KiB buffer; the sending thread makes `count` calls
//! `send(fd, frame, frame_bytes, MSG_NOSIGNAL)` of one fixed buffer after `warmup` untimed ones. The
//! figure is the sending thread's own CPU time (CLOCK_THREAD_CPUTIME_ID; user/system split from
//! getrusage(RUSAGE_THREAD)) divided by the number of sends. On loopback that thread also runs the
//! TCP receive path of the peer socket (segment processing, queueing, waking the reader): the
//! kernel does that work in the sender's softirq context, so the figure is "one send of a frame to a
//! local reader", the reader's own `recv` copy-out is reported apart.

use serde::Serialize;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct FloorArgs {
    /// Timed `send` calls.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub count: u64,
    /// Untimed `send` calls made first.
    #[arg(long, default_value_t = 20_000)]
    pub warmup: u64,
    /// Bytes per `send` (the frame size).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub frame_bytes: u32,
    /// CPU the sending thread pins itself to (-1: no pinning).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub sender_cpu: i32,
    /// CPU the reader thread pins itself to (-1: no pinning).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub reader_cpu: i32,
    /// The reader busy-polls with non-blocking reads instead of sleeping in `recv`: it is never on
    /// the socket's wait queue, so a send never has to wake it (no cross-CPU wake-up in the figure).
    #[arg(long)]
    pub reader_spin: bool,
    /// Write the figures as one JSON object to FILE (`-` for stdout; the summary then goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct FloorReport {
    pub scenario: &'static str,
    pub params: Option<FloorArgs>,
    pub what: &'static str,
    pub sends: u64,
    pub bytes_sent: u64,
    pub wall_secs: f64,
    pub sends_per_sec: f64,
    /// Sending thread CPU (CLOCK_THREAD_CPUTIME_ID) per send, microseconds.
    pub sender_cpu_us_per_send: f64,
    /// Sending thread user / system CPU per send from getrusage(RUSAGE_THREAD), microseconds.
    pub sender_user_us_per_send: f64,
    pub sender_sys_us_per_send: f64,
    /// Reader thread CPU per timed send (its `recv` calls; with `--reader-spin` mostly polling), microseconds.
    pub reader_cpu_us_per_send: f64,
    pub reader_recv_calls: u64,
    pub pinned: bool,
}

/// Nanoseconds of CPU the calling thread has used.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// (user, system) CPU microseconds of the calling thread.
fn thread_rusage_us() -> (u64, u64) {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime), us(ru.ru_stime))
}

/// Pin the calling thread to `cpu`; false if `cpu` is negative or the call failed.
fn pin_to(cpu: i32) -> bool {
    if cpu < 0 {
        return false;
    }
    // SAFETY: an all-zero cpu_set_t is the empty set; CPU_SET and sched_setaffinity get valid pointers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Send all of `buf` with one or more `send(2)` calls; returns the calls made.
fn send_all(fd: i32, buf: &[u8]) -> anyhow::Result<u64> {
    let mut off = 0;
    let mut calls = 0;
    while off < buf.len() {
        // SAFETY: `buf[off..]` is a valid readable region of the given length.
        let n = unsafe {
            libc::send(fd, buf[off..].as_ptr().cast(), buf.len() - off, libc::MSG_NOSIGNAL)
        };
        calls += 1;
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        off += n as usize;
    }
    Ok(calls)
}

pub fn run(args: &FloorArgs) -> anyhow::Result<FloorReport> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sender = TcpStream::connect(addr)?;
    let (mut receiver, _) = listener.accept()?;
    sender.set_nodelay(true)?;
    let reader_cpu = args.reader_cpu;
    receiver.set_nonblocking(args.reader_spin)?;
    let reader = std::thread::spawn(move || -> (u64, u64, u64) {
        pin_to(reader_cpu);
        let mut buf = vec![0u8; 64 * 1024];
        let (mut calls, mut bytes) = (0u64, 0u64);
        let mut mark: Option<(u64, u64)> = None;
        let start = thread_cpu_ns();
        loop {
            match receiver.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    calls += 1;
                    bytes += n as u64;
                    if mark.is_none() && buf[n - 1] == 1 {
                        mark = Some((thread_cpu_ns(), calls));
                    }
                }
            }
        }
        let end = thread_cpu_ns();
        let (from, from_calls) = mark.unwrap_or((start, 0));
        (end.saturating_sub(from), calls - from_calls, bytes)
    });
    let pinned = pin_to(args.sender_cpu);
    let fd = sender.as_raw_fd();
    // Warm-up frames end in 0; timed frames end in 1, so the reader knows where timing starts.
    let mut frame = vec![b'x'; args.frame_bytes as usize];
    if let Some(last) = frame.last_mut() {
        *last = 0;
    }
    for _ in 0..args.warmup {
        send_all(fd, &frame)?;
    }
    if let Some(last) = frame.last_mut() {
        *last = 1;
    }
    let (u0, s0) = thread_rusage_us();
    let c0 = thread_cpu_ns();
    let t0 = Instant::now();
    let mut calls = 0;
    for _ in 0..args.count {
        calls += send_all(fd, &frame)?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let c1 = thread_cpu_ns();
    let (u1, s1) = thread_rusage_us();
    let mut sender = sender;
    let _ = sender.flush();
    drop(sender);
    let (reader_ns, reader_calls, _bytes) =
        reader.join().map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
    let n = args.count as f64;
    Ok(FloorReport {
        scenario: "floor",
        params: Some(args.clone()),
        what: "CPU of the sending thread per blocking send(2) of one frame to a loopback TCP peer (includes the loopback receive path the kernel runs on the sender's CPU)",
        sends: calls,
        bytes_sent: args.count * args.frame_bytes as u64,
        wall_secs: wall,
        sends_per_sec: n / wall.max(1e-9),
        sender_cpu_us_per_send: (c1 - c0) as f64 / 1000.0 / n,
        sender_user_us_per_send: (u1 - u0) as f64 / n,
        sender_sys_us_per_send: (s1 - s0) as f64 / n,
        reader_cpu_us_per_send: reader_ns as f64 / 1000.0 / n,
        reader_recv_calls: reader_calls,
        pinned,
    })
}

impl FloorReport {
    pub fn write_summary(&self, w: &mut dyn Write) -> std::io::Result<()> {
        writeln!(w, "== pushgate-load floor: {} ==", self.what)?;
        writeln!(
            w,
            "{} sends of {} bytes in {:.2}s = {:.0} sends/s (sender pinned: {}, reader spins: {})",
            self.sends,
            self.params.as_ref().map_or(0, |p| p.frame_bytes),
            self.wall_secs,
            self.sends_per_sec,
            self.pinned,
            self.params.as_ref().is_some_and(|p| p.reader_spin)
        )?;
        writeln!(
            w,
            "sender CPU per send: {:.3} us (user {:.3} + sys {:.3} from getrusage); reader CPU per send: {:.3} us over {} recv calls",
            self.sender_cpu_us_per_send,
            self.sender_user_us_per_send,
            self.sender_sys_us_per_send,
            self.reader_cpu_us_per_send,
            self.reader_recv_calls
        )
    }

    /// Print the summary (to stderr when the JSON goes to stdout) and write the JSON file.
    pub fn emit(&self, json: Option<&str>) -> anyhow::Result<()> {
        crate::output::emit(self, json, |w| self.write_summary(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_short_run() {
        let args = FloorArgs {
            count: 2_000,
            warmup: 100,
            frame_bytes: 100,
            sender_cpu: -1,
            reader_cpu: -1,
            reader_spin: false,
            json: None,
        };
        let r = run(&args);
        let Ok(r) = r else { panic!("floor run failed: {r:?}") };
        assert_eq!(r.sends, 2_000);
        assert!(r.sender_cpu_us_per_send > 0.0);
        let mut out = Vec::new();
        assert!(r.write_summary(&mut out).is_ok());
    }
}
