//! A measuring allocator for memory work, built only with `--features heap-profile`: mimalloc
//! underneath, plus per-thread counts of live allocations by requested size, so the heap a
//! connection costs can be read exactly (`GET /debug/heap` on a one-shard server) and set
//! against RSS. Thread-local cells, no atomics; off in every normal build.

use mimalloc::MiMalloc;
use std::{
    alloc::{GlobalAlloc, Layout},
    cell::Cell,
};

/// Size classes of 8 bytes up to 4 KiB (class i holds sizes 8i-7..=8i), then one class for
/// everything larger.
const CLASSES: usize = 514;

thread_local! {
    static COUNTS: [Cell<i64>; CLASSES] = const { [const { Cell::new(0) }; CLASSES] };
    static BYTES: Cell<i64> = const { Cell::new(0) };
}

fn class(size: usize) -> usize {
    size.div_ceil(8).min(CLASSES - 1)
}

fn note(size: usize, delta: i64) {
    let _ = COUNTS.try_with(|c| c[class(size)].set(c[class(size)].get() + delta));
    let _ = BYTES.try_with(|b| b.set(b.get() + delta * size as i64));
}

/// mimalloc, counting what this thread allocates and frees.
pub struct Counting;

/// Counts an allocation that succeeded.
fn counted(ptr: *mut u8, size: usize) -> *mut u8 {
    if !ptr.is_null() {
        note(size, 1);
    }
    ptr
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to mimalloc, whose contract is GlobalAlloc's.
        counted(unsafe { MiMalloc.alloc(layout) }, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(layout.size(), -1);
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        counted(unsafe { MiMalloc.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the caller upholds the rest.
        let moved = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            // On failure the old block stays allocated, and counted.
            note(layout.size(), -1);
            note(new_size, 1);
        }
        moved
    }
}

/// This thread's live heap: total requested bytes, then `size count` per size class (sizes
/// rounded up to 8; the last class holds everything over 4 KiB). Per thread: a block freed on
/// another thread is counted there, and the report's own buffer is live while it is built.
pub fn report() -> String {
    let mut out = format!("live_bytes {}\n", BYTES.with(Cell::get));
    COUNTS.with(|counts| {
        for (i, count) in counts.iter().enumerate().filter(|(_, c)| c.get() != 0) {
            let size = if i == CLASSES - 1 { "over_4096".to_string() } else { (i * 8).to_string() };
            out.push_str(&format!("{size} {}\n", count.get()));
        }
    });
    out
}
