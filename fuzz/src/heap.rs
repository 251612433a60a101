//! Allocation bounded by the input's size, checked on every fuzz input.
//!
//! A counting global allocator tracks the live heap; [`bounded`] runs a parse and fails the
//! input when its peak exceeds [`FIXED_BUDGET`] plus [`PER_INPUT_BYTE`] per input byte, so a
//! header that claims 2^60 entries is caught even when the machine could have served it.
//! Parsing time is bounded by libFuzzer's `-timeout` (scripts/fuzz.sh) and measured for
//! linearity by benches/parse_scaling.rs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Heap a parse may use whatever its input: buffers, tables and pre-allocations that do not
/// grow with the input.
pub const FIXED_BUDGET: usize = 32 << 20;
/// Heap a parse may use per byte of input (decoded values, indexes, error text).
pub const PER_INPUT_BYTE: usize = 64;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, which got it from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's, unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most heap a parse of `input_len` bytes may hold at once.
pub fn budget(input_len: usize) -> usize {
    FIXED_BUDGET.saturating_add(PER_INPUT_BYTE.saturating_mul(input_len))
}

/// Runs `parse` and panics (a finding) if its peak live heap exceeded [`budget`]`(input_len)`.
pub fn bounded<T>(input_len: usize, parse: impl FnOnce() -> T) -> T {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = parse();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(
        peak <= budget(input_len),
        "parsing {input_len} bytes held {peak} bytes of heap at once (budget {})",
        budget(input_len)
    );
    out
}
