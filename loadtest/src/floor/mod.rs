//! The `floor` subcommand: what the kernel charges for sending one frame to a loopback TCP
//! reader, the floor that a server's CPU per delivery is compared with.
//!
//! - `pair` (no `--sockets`): one connected pair, blocking `send(2)`, a reader thread.
//! - `many` (`--sockets N`): N connected pairs, non-blocking sends round robin over the N
//!   sockets, as a fan-out to N subscribers makes them; the reader is a child process
//!   (`reader`) that drains all N with epoll, so each process holds N descriptors and N can go
//!   up to the open-file limit. Variants: K frames per `sendmsg` (write coalescing), and sends
//!   submitted through io_uring in batches (`uring`).
//!
//! The figure is always the sending thread's own CPU (CLOCK_THREAD_CPUTIME_ID; user/system from
//! getrusage(RUSAGE_THREAD)) per frame. On loopback that thread also runs the peer socket's TCP
//! receive path (segment processing, queueing, waking the reader), so it is "one send of a frame
//! to a local reader"; the reader's own CPU is reported apart.

mod many;
mod pair;
pub mod reader;
mod uring;

use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct FloorArgs {
    /// Timed frames sent.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub count: u64,
    /// Untimed frames sent first (with --sockets, at least one per socket).
    #[arg(long, default_value_t = 20_000)]
    pub warmup: u64,
    /// Bytes per frame.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub frame_bytes: u32,
    /// CPU the sending thread pins itself to (-1: no pinning).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub sender_cpu: i32,
    /// CPU the reader pins itself to (-1: no pinning).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub reader_cpu: i32,
    /// The reader busy-polls (non-blocking reads; with --sockets, epoll_wait with a zero timeout)
    /// instead of sleeping: it is never woken, so no cross-CPU wake-up is in the figure.
    #[arg(long)]
    pub reader_spin: bool,
    /// Send to N loopback sockets round robin with non-blocking sends (the reader, a child
    /// process, drains them all with epoll). Without it: one pair and blocking sends.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500_000))]
    pub sockets: Option<u32>,
    /// With --sockets: frames per call; K > 1 sends K frames to one socket in one `sendmsg`
    /// with K iovecs, as a server's write coalescing does when K frames are queued.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub frames_per_call: u32,
    /// With --sockets: submit the sends through io_uring (IORING_OP_SEND), B sends to B
    /// consecutive sockets per io_uring_enter. 0: plain send/sendmsg calls.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub uring_batch: u32,
    /// With --sockets: connections per 127.0.0.x source address (default: a quarter of the
    /// ephemeral port range, as the other scenarios).
    #[arg(long)]
    pub conns_per_source: Option<usize>,
    /// Write the figures as one JSON object to FILE (`-` for stdout; the summary then goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct FloorReport {
    pub scenario: &'static str,
    pub params: Option<FloorArgs>,
    pub what: String,
    /// Sockets sent to round robin (1 for the pair).
    pub sockets: u64,
    /// `blocking send`, `send`, `sendmsg xK` or `io_uring batch B`.
    pub mode: String,
    /// Timed frames (for the pair: send calls, counting the rare partial send twice).
    pub sends: u64,
    /// Timed calls: send/sendmsg calls, or io_uring_enter calls.
    pub calls: u64,
    /// Timed sends that did not take the whole frame (socket full: the reader fell behind).
    pub would_block: u64,
    pub bytes_sent: u64,
    pub wall_secs: f64,
    pub sends_per_sec: f64,
    /// Sending thread CPU (CLOCK_THREAD_CPUTIME_ID) per frame, microseconds.
    pub sender_cpu_us_per_send: f64,
    /// Sending thread user / system CPU per frame from getrusage(RUSAGE_THREAD), microseconds.
    pub sender_user_us_per_send: f64,
    pub sender_sys_us_per_send: f64,
    /// Sending thread CPU per call, microseconds.
    pub sender_cpu_us_per_call: f64,
    /// Reader CPU per timed frame (its reads; when it spins, mostly polling), microseconds.
    pub reader_cpu_us_per_send: f64,
    pub reader_recv_calls: u64,
    /// epoll_wait calls of the reader while timed (--sockets only).
    pub reader_epoll_waits: u64,
    pub pinned: bool,
}

pub fn run(args: &FloorArgs) -> anyhow::Result<FloorReport> {
    match args.sockets {
        None => pair::run(args),
        Some(n) => many::run(args, n as usize),
    }
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

/// Marks a frame as warm-up (last byte 0) or timed (1): the reader starts counting at the first
/// timed byte it sees.
fn set_last(frame: &mut [u8], b: u8) {
    if let Some(last) = frame.last_mut() {
        *last = b;
    }
}

/// The sending thread's clocks at the start of the timed phase; `finish` turns them into figures.
struct Timer {
    cpu_ns: u64,
    rusage_us: (u64, u64),
    wall: std::time::Instant,
}

/// What a timed phase measured, per frame and per call.
struct Timed {
    wall_secs: f64,
    cpu_us: f64,
    user_us: f64,
    sys_us: f64,
}

impl Timer {
    fn start() -> Timer {
        let rusage_us = thread_rusage_us();
        Timer { cpu_ns: thread_cpu_ns(), rusage_us, wall: std::time::Instant::now() }
    }

    fn finish(self) -> Timed {
        let wall_secs = self.wall.elapsed().as_secs_f64();
        let cpu_ns = thread_cpu_ns() - self.cpu_ns;
        let (u, s) = thread_rusage_us();
        Timed {
            wall_secs,
            cpu_us: cpu_ns as f64 / 1000.0,
            user_us: (u - self.rusage_us.0) as f64,
            sys_us: (s - self.rusage_us.1) as f64,
        }
    }
}

impl FloorReport {
    /// Fills the sender's figures from a timed phase of `frames` frames in `calls` calls.
    fn set_timed(&mut self, t: &Timed, frames: u64, calls: u64) {
        let n = frames.max(1) as f64;
        self.sends = frames;
        self.calls = calls;
        self.wall_secs = t.wall_secs;
        self.sends_per_sec = n / t.wall_secs.max(1e-9);
        self.sender_cpu_us_per_send = t.cpu_us / n;
        self.sender_user_us_per_send = t.user_us / n;
        self.sender_sys_us_per_send = t.sys_us / n;
        self.sender_cpu_us_per_call = t.cpu_us / calls.max(1) as f64;
    }

    pub fn write_summary(&self, w: &mut dyn Write) -> std::io::Result<()> {
        writeln!(w, "== pushgate-load floor: {} ==", self.what)?;
        writeln!(
            w,
            "{} frames of {} bytes to {} socket(s) ({}, {} calls) in {:.2}s = {:.0} frames/s (sender pinned: {}, reader spins: {}, would block: {})",
            self.sends,
            self.params.as_ref().map_or(0, |p| p.frame_bytes),
            self.sockets,
            self.mode,
            self.calls,
            self.wall_secs,
            self.sends_per_sec,
            self.pinned,
            self.params.as_ref().is_some_and(|p| p.reader_spin),
            self.would_block
        )?;
        writeln!(
            w,
            "sender CPU per frame: {:.3} us (user {:.3} + sys {:.3} from getrusage; {:.3} us per call); reader CPU per frame: {:.3} us over {} reads",
            self.sender_cpu_us_per_send,
            self.sender_user_us_per_send,
            self.sender_sys_us_per_send,
            self.sender_cpu_us_per_call,
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

    pub(super) fn args(sockets: Option<u32>) -> FloorArgs {
        FloorArgs {
            count: 2_000,
            warmup: 100,
            frame_bytes: 100,
            sender_cpu: -1,
            reader_cpu: -1,
            reader_spin: false,
            sockets,
            frames_per_call: 1,
            uring_batch: 0,
            conns_per_source: None,
            json: None,
        }
    }

    #[test]
    fn measures_a_short_run() {
        let r = run(&args(None));
        let Ok(r) = r else { panic!("floor run failed: {r:?}") };
        assert_eq!(r.sends, 2_000);
        assert_eq!(r.sockets, 1);
        assert!(r.sender_cpu_us_per_send > 0.0);
        let mut out = Vec::new();
        assert!(r.write_summary(&mut out).is_ok());
    }
}
