//! `floor` without `--sockets`: one connected 127.0.0.1 TCP pair (TCP_NODELAY on the sending
//! side, as a push server sets it); a reader thread drains the other end into a 64 KiB buffer;
//! the sending thread makes `count` calls `send(fd, frame, frame_bytes, MSG_NOSIGNAL)` of one
//! fixed buffer after `warmup` untimed ones.

use super::{set_last, FloorArgs, FloorReport, Timer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

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
        super::pin_to(reader_cpu);
        let mut buf = vec![0u8; 64 * 1024];
        let (mut calls, mut bytes) = (0u64, 0u64);
        let mut mark: Option<(u64, u64)> = None;
        let start = super::thread_cpu_ns();
        loop {
            match receiver.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    calls += 1;
                    bytes += n as u64;
                    if mark.is_none() && buf[n - 1] == 1 {
                        mark = Some((super::thread_cpu_ns(), calls));
                    }
                }
            }
        }
        let end = super::thread_cpu_ns();
        let (from, from_calls) = mark.unwrap_or((start, 0));
        (end.saturating_sub(from), calls - from_calls, bytes)
    });
    let pinned = super::pin_to(args.sender_cpu);
    let fd = sender.as_raw_fd();
    let mut frame = vec![b'x'; args.frame_bytes as usize];
    set_last(&mut frame, 0);
    for _ in 0..args.warmup {
        send_all(fd, &frame)?;
    }
    set_last(&mut frame, 1);
    let timer = Timer::start();
    let mut calls = 0;
    for _ in 0..args.count {
        calls += send_all(fd, &frame)?;
    }
    let t = timer.finish();
    let mut sender = sender;
    let _ = sender.flush();
    drop(sender);
    let (reader_ns, reader_calls, _bytes) =
        reader.join().map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
    let mut report = FloorReport {
        scenario: "floor",
        params: Some(args.clone()),
        what: "CPU of the sending thread per blocking send(2) of one frame to a loopback TCP peer (includes the loopback receive path the kernel runs on the sender's CPU)".into(),
        sockets: 1,
        mode: "blocking send".into(),
        bytes_sent: args.count * args.frame_bytes as u64,
        reader_cpu_us_per_send: reader_ns as f64 / 1000.0 / args.count as f64,
        reader_recv_calls: reader_calls,
        pinned,
        ..FloorReport::default()
    };
    // As before: per timed frame, and `sends` counts the send calls.
    report.set_timed(&t, args.count, calls);
    report.sends = calls;
    Ok(report)
}
