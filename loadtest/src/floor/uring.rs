//! `floor --sockets N --uring-batch B`: the same sends submitted through io_uring, B
//! `IORING_OP_SEND`s to B consecutive sockets per `io_uring_enter`. What a server would pay if
//! it batched the sends of one publication into one submission instead of one syscall each.

use super::{set_last, FloorArgs, FloorReport, Timer};
use io_uring::{opcode, types, IoUring};

pub fn run(args: &FloorArgs, fds: &[i32], report: &mut FloorReport) -> anyhow::Result<()> {
    let batch = args.uring_batch as usize;
    let mut ring = IoUring::new(batch.next_power_of_two().max(8) as u32)?;
    let mut frame = vec![b'x'; args.frame_bytes as usize];
    let warm = args.warmup.max(fds.len() as u64).div_ceil(batch as u64);
    let rounds = args.count.div_ceil(batch as u64);
    set_last(&mut frame, 0);
    submit_rounds(&mut ring, fds, &frame, batch, warm)?;
    set_last(&mut frame, 1);
    let timer = Timer::start();
    let short = submit_rounds(&mut ring, fds, &frame, batch, rounds)?;
    let t = timer.finish();
    report.set_timed(&t, rounds * batch as u64, rounds);
    report.would_block = short;
    report.mode = format!("io_uring batch {batch}");
    Ok(())
}

/// `rounds` submissions of `batch` sends each, round robin over `fds`; returns the sends that
/// did not take the whole frame.
fn submit_rounds(
    ring: &mut IoUring,
    fds: &[i32],
    frame: &[u8],
    batch: usize,
    rounds: u64,
) -> anyhow::Result<u64> {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    let mut short = 0;
    let mut i = 0;
    for _ in 0..rounds {
        {
            let mut sq = ring.submission();
            for _ in 0..batch {
                let sqe = opcode::Send::new(types::Fd(fds[i]), frame.as_ptr(), frame.len() as u32)
                    .flags(flags)
                    .build();
                i += 1;
                if i == fds.len() {
                    i = 0;
                }
                // SAFETY: `frame` outlives the submission: every send completes before
                // `submit_and_wait` returns and before `frame` can change.
                unsafe { sq.push(&sqe) }.map_err(|_| anyhow::anyhow!("submission queue full"))?;
            }
        }
        ring.submit_and_wait(batch)?;
        for cqe in ring.completion() {
            if cqe.result() != frame.len() as i32 {
                short += 1;
            }
        }
    }
    Ok(short)
}
