//! A counting wrapper around the system allocator.
//!
//! Owns: four process-wide counters (allocation calls, bytes requested, live bytes, peak live
//! bytes) and the [`CountingAlloc`] type that a binary installs as `#[global_allocator]`.
//! Must never: allocate itself, or change what the system allocator returns.
//!
//! `realloc` counts as one allocation of `new_size` bytes (and frees `old_size`), which is
//! what a grow-by-copy would cost; `alloc_zeroed` counts like `alloc`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
static PEAK_LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting. Install with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
pub struct CountingAlloc;

fn on_alloc(bytes: usize) {
    let bytes = bytes as u64;
    ALLOCS.fetch_add(1, Relaxed);
    ALLOC_BYTES.fetch_add(bytes, Relaxed);
    let live = LIVE_BYTES.fetch_add(bytes, Relaxed) + bytes;
    PEAK_LIVE_BYTES.fetch_max(live, Relaxed);
}

fn on_free(bytes: usize) {
    LIVE_BYTES.fetch_sub(bytes as u64, Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are side effects only.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        on_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            on_free(layout.size());
            on_alloc(new_size);
        }
        p
    }
}

/// A reading of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Allocation calls (alloc, alloc_zeroed, realloc).
    pub allocs: u64,
    /// Bytes requested by those calls.
    pub alloc_bytes: u64,
    /// Bytes currently allocated and not freed.
    pub live_bytes: u64,
    /// Highest `live_bytes` since the last [`reset_peak`].
    pub peak_live_bytes: u64,
}

impl AllocStats {
    /// Read the counters now.
    pub fn now() -> Self {
        AllocStats {
            allocs: ALLOCS.load(Relaxed),
            alloc_bytes: ALLOC_BYTES.load(Relaxed),
            live_bytes: LIVE_BYTES.load(Relaxed),
            peak_live_bytes: PEAK_LIVE_BYTES.load(Relaxed),
        }
    }

    /// What happened between `earlier` and `self`: differences of the cumulative counters,
    /// and the peak above `earlier`'s live bytes.
    pub fn since(self, earlier: AllocStats) -> AllocDelta {
        AllocDelta {
            allocs: self.allocs - earlier.allocs,
            alloc_bytes: self.alloc_bytes - earlier.alloc_bytes,
            peak_live_bytes_above_start: self.peak_live_bytes.saturating_sub(earlier.live_bytes),
        }
    }
}

/// Allocation work done during one measured phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocDelta {
    pub allocs: u64,
    pub alloc_bytes: u64,
    /// Peak live bytes during the phase, minus the live bytes when it started.
    pub peak_live_bytes_above_start: u64,
}

/// Start a new peak measurement from the current live bytes.
pub fn reset_peak() {
    PEAK_LIVE_BYTES.store(LIVE_BYTES.load(Relaxed), Relaxed);
}

/// True when a [`CountingAlloc`] is installed (some allocation has been counted).
pub fn is_counting() -> bool {
    let _probe = std::hint::black_box(Box::new(0u64));
    ALLOCS.load(Relaxed) > 0
}
