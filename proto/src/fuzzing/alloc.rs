//! Heap accounting: the [`CountingAllocator`] the fuzz targets and the
//! replay test install, the per-thread counters it keeps, and the bound a
//! connection's heap is held to.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::Limits;

/// A global allocator that counts live heap bytes per thread, so a harness can
/// tell how much memory a connection holds without the connection exposing
/// its buffers. Fuzz targets and the replay test install it; without it the
/// heap oracle is skipped (and says so nowhere, because the other oracles
/// still run).
#[derive(Debug)]
pub struct CountingAllocator;

thread_local! {
    // Const-initialised and without destructors, so reading them never
    // allocates and works even while a thread is being torn down.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

static COUNTING: AtomicBool = AtomicBool::new(false);

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(size as isize);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_sub(size as isize)));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping touches only thread-local integers.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        COUNTING.store(true, Relaxed);
        // SAFETY: forwarded from our caller's contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from our caller's contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from our caller's contract.
        unsafe { System.dealloc(ptr, layout) };
        note_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from our caller's contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            note_free(layout.size());
            note_alloc(new_size);
        }
        new
    }
}

/// The replay test binary counts too, so corpus files are held to the same
/// heap bound as under libFuzzer. Counters are per thread, so tests running
/// in parallel do not disturb each other.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result, the net heap bytes it left allocated and
/// the most it held at once above its starting point.
pub(crate) fn measured<R>(f: impl FnOnce() -> R) -> (R, isize, isize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    let end = LIVE.with(Cell::get);
    let peak = PEAK.with(Cell::get);
    (r, end - start, peak - start)
}

/// Headroom in the heap bound for fixed-size allocations a connection may make
/// whatever its limits (a preallocated read buffer, a lazily produced body
/// piece, the response head being formatted).
const HEAP_SLACK: usize = 96 * 1024;

/// The most heap bytes a connection with these limits may hold: one head, one
/// body twice (as received and as echoed), the pending output it is allowed
/// plus one response beyond it, one read of input beyond any limit, each
/// doubled for `Vec` growth, plus fixed slack.
fn heap_bound(limits: &Limits, max_read: usize) -> usize {
    let per_request = limits.max_head_bytes + 2 * limits.max_body_bytes + max_read;
    let output = limits.max_pending_output + limits.max_body_bytes + 1024;
    2 * (per_request + output) + HEAP_SLACK
}

/// The heap one connection holds, summed over every measured call into it,
/// and the bound it must stay within.
pub(super) struct Heap {
    limits: Limits,
    /// Net heap bytes the connection holds, summed over every call into it.
    held: isize,
    bound: isize,
}

impl Heap {
    /// For a connection with these limits, read at most `max_read` bytes at
    /// a time, whose making left `held` bytes allocated.
    pub(super) fn new(limits: Limits, max_read: usize, held: isize) -> Self {
        Heap {
            limits,
            held,
            bound: heap_bound(&limits, max_read) as isize,
        }
    }

    /// Runs `f`, a call into the connection, accounting for the heap it
    /// keeps and checking the bound at its peak.
    pub(super) fn measure<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let (r, net, peak) = measured(f);
        self.check(peak);
        self.held += net;
        r
    }

    fn check(&self, peak: isize) {
        if COUNTING.load(Relaxed) {
            let at_peak = self.held + peak;
            assert!(
                at_peak <= self.bound,
                "connection held {at_peak} heap bytes, over the bound {} for {:?}",
                self.bound,
                self.limits
            );
        }
    }
}
