//! `hearsay`: run, check, replay and clean up Jepsen-style chaos tests.
//! Exit codes: 0 valid, 1 invalid, 2 unknown or harness error, 254 bad arguments.

use libmimalloc_sys::{mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_zalloc};
use libmimalloc_sys::{mi_realloc_aligned, mi_zalloc_aligned};
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// mimalloc rather than glibc's malloc: a simulated run allocates and frees
/// small objects at a high rate (messages, frames, history values), and glibc's
/// malloc and free were a sixth of its instructions (callgrind, `hearsay sim
/// --bench --seeds 1..5 --nemesis all`: 1.82 -> 1.69 G). No decision depends
/// on addresses: the digests of seeds 1..30 are the same with either.
///
/// Hand-written rather than the `mimalloc` crate's allocator, which sends
/// every request through the aligned entry points (`mi_malloc_aligned`), a
/// slower path for blocks over mimalloc's small sizes; as std's `System`
/// does with malloc, an alignment mimalloc always gives (a word: every block
/// starts at a multiple of 8) takes the plain ones.
struct MiMalloc;

const WORD: usize = std::mem::size_of::<usize>();

// SAFETY: mimalloc's functions return null or a block of at least the size
// asked, aligned to a word by mimalloc's own guarantee or to the alignment
// asked; `dealloc` and `realloc` get only pointers these returned.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi_malloc(layout.size()) as *mut u8
        } else {
            mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi_zalloc(layout.size()) as *mut u8
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    std::process::exit(hearsay_harness::cli::main());
}
