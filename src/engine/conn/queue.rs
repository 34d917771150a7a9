//! A connection's outbound queue: shared frame references, bounded in bytes, drained by
//! vectored writes so that several queued frames leave in one syscall.

use bytes::Bytes;
use std::{collections::VecDeque, io::IoSlice, rc::Rc};

/// Frame bytes ready for the wire. Every local receiver of a publication holds the same `Rc`:
/// queuing it costs a non-atomic increment, never a copy. Bytes that came from another shard
/// keep their one `Arc` inside, so atomics are paid once per shard, not per subscriber.
#[derive(Debug, Clone)]
pub struct Frame(Rc<Bytes>);

impl Frame {
    pub fn new(bytes: impl Into<Bytes>) -> Frame {
        Frame(Rc::new(bytes.into()))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The queue is over its byte limit: the connection reads slower than we publish.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// Frames waiting to be written. An empty queue holds no heap memory.
#[derive(Debug, Default)]
pub struct Outbound {
    frames: VecDeque<Frame>,
    /// Bytes of the front frame already written (u32: a frame is at most the message limit).
    head: u32,
    /// Unwritten bytes in the queue (u32: bounded by the queue limit plus one close frame).
    bytes: u32,
}

/// A length as the queue counts it (saturating: no frame comes near 4 GiB).
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Outbound {
    /// Queues `frame` unless that would pass `limit` unwritten bytes.
    pub fn push(&mut self, frame: Frame, limit: usize) -> Result<(), Overflow> {
        if self.bytes() + frame.len() > limit {
            return Err(Overflow);
        }
        self.push_unbounded(frame);
        Ok(())
    }

    /// Queues a frame that must go out whatever the limit (a close frame).
    pub fn push_unbounded(&mut self, frame: Frame) {
        self.bytes = self.bytes.saturating_add(len32(frame.len()));
        self.frames.push_back(frame);
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes as usize
    }

    /// Drops every frame not yet started; a half-written frame stays so the stream stays valid.
    pub fn clear_unstarted(&mut self) {
        let keep = usize::from(self.head > 0);
        while self.frames.len() > keep {
            if let Some(frame) = self.frames.pop_back() {
                self.bytes = self.bytes.saturating_sub(len32(frame.len()));
            }
        }
        self.shrink();
    }

    /// Fills `slices` with the unwritten bytes, front first; returns how many were filled.
    pub fn gather<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (i, frame) in self.frames.iter().enumerate().take(slices.len()) {
            let start = if i == 0 { self.head as usize } else { 0 };
            slices[i] = IoSlice::new(&frame.bytes()[start..]);
            n += 1;
        }
        n
    }

    /// The unwritten part of the front frame.
    pub fn front(&self) -> Option<&[u8]> {
        self.frames.front().map(|f| &f.bytes()[self.head as usize..])
    }

    /// Marks `written` bytes as sent.
    pub fn advance(&mut self, mut written: usize) {
        self.bytes = self.bytes.saturating_sub(len32(written));
        while written > 0 {
            let Some(front) = self.frames.front() else {
                break;
            };
            let left = front.len() - self.head as usize;
            if written < left {
                self.head += len32(written);
                return;
            }
            written -= left;
            self.head = 0;
            self.frames.pop_front();
        }
        self.shrink();
    }

    fn shrink(&mut self) {
        if self.frames.is_empty() && self.frames.capacity() > 0 {
            self.frames = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(out: &Outbound) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 8];
        let n = out.gather(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn bounded_in_bytes() {
        let mut out = Outbound::default();
        assert_eq!(out.push(Frame::new(vec![1u8; 6]), 10), Ok(()));
        assert_eq!(out.push(Frame::new(vec![2u8; 5]), 10), Err(Overflow));
        assert_eq!(out.push(Frame::new(vec![3u8; 4]), 10), Ok(()));
        assert_eq!(out.bytes(), 10);
        out.push_unbounded(Frame::new(vec![4u8; 3]));
        assert_eq!(out.bytes(), 13);
    }

    #[test]
    fn partial_writes_resume_mid_frame() {
        let mut out = Outbound::default();
        out.push_unbounded(Frame::new(b"abc".to_vec()));
        out.push_unbounded(Frame::new(b"defg".to_vec()));
        assert_eq!(collect(&out), b"abcdefg");
        out.advance(2);
        assert_eq!(collect(&out), b"cdefg");
        assert_eq!(out.front(), Some(&b"c"[..]));
        out.advance(3);
        assert_eq!(collect(&out), b"fg");
        out.advance(2);
        assert!(out.is_empty());
        assert_eq!(out.bytes(), 0);
    }

    #[test]
    fn clearing_keeps_a_started_frame() {
        let mut out = Outbound::default();
        for f in [b"abc", b"def", b"ghi"] {
            out.push_unbounded(Frame::new(f.to_vec()));
        }
        out.advance(1);
        out.clear_unstarted();
        assert_eq!(collect(&out), b"bc");
        out.advance(2);
        out.clear_unstarted();
        assert!(out.is_empty());
    }

    #[test]
    fn shared_frames_are_not_copied() {
        let frame = Frame::new(b"payload".to_vec());
        let mut a = Outbound::default();
        let mut b = Outbound::default();
        a.push_unbounded(frame.clone());
        b.push_unbounded(frame.clone());
        let pa = a.front().map(<[u8]>::as_ptr);
        let pb = b.front().map(<[u8]>::as_ptr);
        assert_eq!(pa, pb);
    }
}
