//! Memory accounting for INFO memory: a global allocator wrapper that counts
//! the bytes in use (redis's `zmalloc` keeps the same counter), and the
//! process's resident set size from `/proc`.
//!
//! The binary installs [`Counting`] around its allocator; in tests and other
//! programs that do not, [`allocated`] reads 0.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// INFO memory's `mem_allocator`.
pub const ALLOCATOR_NAME: &str = "libc";

/// Small blocks kept for reuse by [`SmallCache`]: size classes of 16 bytes
/// up to 128, at most `DEPTH` blocks each (so at most 256 KB held back).
const CLASS_STEP: usize = 16;
const CLASSES: usize = 8;
const DEPTH: usize = 256;

/// Keeps freed small blocks (up to 128 bytes) for the next allocation of
/// their size class, in front of an allocator (glibc's malloc in the
/// binary). Why: a request allocates and frees a few small blocks (its
/// arguments, its argument list, a new key, a reply) and glibc spent about
/// 100 instructions on each allocation and 50 on each free, often in its
/// slow path (its per-thread cache holds 7 blocks a size); a pop or push
/// here is about 15. redis gets the same from jemalloc's thread cache. A
/// general-purpose allocator (mimalloc) was measured and left: it grew the
/// idle RSS by 5 MB and made the 1M-argument request 3x slower. Large
/// blocks, and the memory given back by `trim`, stay glibc's business.
///
/// One lock for all threads, only ever tried: the node runs its requests on
/// one thread, and a thread that finds it taken uses the inner allocator.
pub struct SmallCache<A> {
    inner: A,
    lock: AtomicBool,
    free: UnsafeCell<[[*mut u8; DEPTH]; CLASSES]>,
    len: UnsafeCell<[usize; CLASSES]>,
}

// SAFETY: `free` and `len` are only touched while `lock` is held.
unsafe impl<A: Sync> Sync for SmallCache<A> {}

impl<A> SmallCache<A> {
    pub const fn new(inner: A) -> Self {
        SmallCache {
            inner,
            lock: AtomicBool::new(false),
            free: UnsafeCell::new([[std::ptr::null_mut(); DEPTH]; CLASSES]),
            len: UnsafeCell::new([0; CLASSES]),
        }
    }

    /// The size class of a layout, if it is small.
    fn class(size: usize, align: usize) -> Option<usize> {
        (size <= CLASS_STEP * CLASSES && align <= CLASS_STEP)
            .then(|| size.saturating_sub(1) / CLASS_STEP)
    }

    /// The layout every block of class `c` is allocated with (the whole
    /// class size, so any request of the class fits in any of its blocks).
    fn block(c: usize) -> Layout {
        // SAFETY: a multiple of 16 up to 128, aligned to 16: always valid.
        unsafe { Layout::from_size_align_unchecked((c + 1) * CLASS_STEP, CLASS_STEP) }
    }

    fn try_lock(&self) -> bool {
        self.lock
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn pop(&self, c: usize) -> Option<*mut u8> {
        if !self.try_lock() {
            return None;
        }
        // SAFETY: the lock is held, so nothing else touches the lists.
        let p = unsafe {
            let len = &mut (*self.len.get())[c];
            if *len == 0 {
                None
            } else {
                *len -= 1;
                Some((*self.free.get())[c][*len])
            }
        };
        self.lock.store(false, Ordering::Release);
        p
    }

    /// Keeps a freed block of class `c`; `false` if it was not kept.
    fn push(&self, c: usize, p: *mut u8) -> bool {
        if !self.try_lock() {
            return false;
        }
        // SAFETY: the lock is held, so nothing else touches the lists.
        let kept = unsafe {
            let len = &mut (*self.len.get())[c];
            if *len == DEPTH {
                false
            } else {
                (*self.free.get())[c][*len] = p;
                *len += 1;
                true
            }
        };
        self.lock.store(false, Ordering::Release);
        kept
    }
}

// SAFETY: a small block is always allocated from `inner` with its class's
// whole layout and given back to `inner` with that same layout; a kept
// block is handed out only for a request of its class, which it fits.
// Everything else is forwarded unchanged.
unsafe impl<A: GlobalAlloc> GlobalAlloc for SmallCache<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::class(layout.size(), layout.align()) {
            Some(c) => match self.pop(c) {
                Some(p) => p,
                // SAFETY: a valid, non-zero layout.
                None => unsafe { self.inner.alloc(Self::block(c)) },
            },
            // SAFETY: forwarded unchanged.
            None => unsafe { self.inner.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::class(layout.size(), layout.align()) {
            Some(c) => {
                if !self.push(c, ptr) {
                    // SAFETY: allocated by `inner` with this layout (see `alloc`).
                    unsafe { self.inner.dealloc(ptr, Self::block(c)) }
                }
            }
            // SAFETY: forwarded unchanged.
            None => unsafe { self.inner.dealloc(ptr, layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match Self::class(layout.size(), layout.align()) {
            Some(c) => match self.pop(c) {
                Some(p) => {
                    // SAFETY: the block holds at least `layout.size()` bytes.
                    unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                    p
                }
                // SAFETY: a valid, non-zero layout.
                None => unsafe { self.inner.alloc_zeroed(Self::block(c)) },
            },
            // SAFETY: forwarded unchanged.
            None => unsafe { self.inner.alloc_zeroed(layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = Self::class(layout.size(), layout.align());
        let new = Self::class(new_size, layout.align());
        match (old, new) {
            // SAFETY: forwarded unchanged.
            (None, None) => unsafe { self.inner.realloc(ptr, layout, new_size) },
            // The block already has room for any size of its class.
            (Some(a), Some(b)) if a == b => ptr,
            _ => {
                // SAFETY: `new_size` with the old alignment is a valid layout
                // (the caller's contract), and the copy stays within both blocks.
                unsafe {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let p = self.alloc(new_layout);
                    if !p.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    p
                }
            }
        }
    }
}

/// Bytes currently allocated through [`Counting`] (redis `used_memory`).
pub fn allocated() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// Wraps an allocator and counts the bytes it hands out.
pub struct Counting<A>(pub A);

// SAFETY: every method forwards to the inner allocator with the same
// arguments; the counter is only bookkeeping.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (caller upholds `alloc`'s contract).
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged (caller upholds `dealloc`'s contract).
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Returns free heap pages to the system (glibc `malloc_trim`, which also
/// releases free pages in the middle of the heap): freed memory otherwise
/// stays in malloc's free lists and in the RSS.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks malloc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's resident set size in bytes (redis `zmalloc_get_rss`), 0 if
/// `/proc` cannot be read.
pub fn rss() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// Total RAM (redis `zmalloc_get_memory_size`), 0 if unknown.
pub fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    u64::try_from(pages).unwrap_or(0) * u64::try_from(page).unwrap_or(0)
}

/// redis `bytesToHuman`: `B`, `K`, `M`, `G`, `T`, `P` with two decimals.
pub fn human(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else {
        format!("{:.2}P", d / (K * K * K * K * K))
    }
}

/// CPU seconds (user, system) from `getrusage` for `who` (RUSAGE_SELF,
/// RUSAGE_CHILDREN, RUSAGE_THREAD).
pub fn cpu(who: libc::c_int) -> (f64, f64) {
    // SAFETY: rusage is plain data; getrusage fills it or fails.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1_000_000.0;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cache_reuses_blocks_and_keeps_contents() {
        let cache = SmallCache::new(std::alloc::System);
        let layout = |n| Layout::from_size_align(n, 8).unwrap();
        // SAFETY: every block is used within its layout and freed once,
        // with the layout it has at that time.
        unsafe {
            let a = cache.alloc(layout(20));
            a.write_bytes(7, 20);
            cache.dealloc(a, layout(20));
            // Same class (17..=32): the freed block comes back.
            let b = cache.alloc(layout(32));
            assert_eq!(a, b);
            b.write_bytes(1, 32);
            // Growing within the class keeps the block, across it moves it.
            assert_eq!(cache.realloc(b, layout(32), 30), b);
            let c = cache.realloc(b, layout(30), 100);
            assert_eq!(std::slice::from_raw_parts(c, 30), &[1u8; 30][..]);
            let d = cache.realloc(c, layout(100), 4096);
            assert_eq!(std::slice::from_raw_parts(d, 30), &[1u8; 30][..]);
            let e = cache.realloc(d, layout(4096), 10);
            assert_eq!(std::slice::from_raw_parts(e, 10), &[1u8; 10][..]);
            cache.dealloc(e, layout(10));
            let z = cache.alloc_zeroed(layout(16));
            assert_eq!(std::slice::from_raw_parts(z, 16), &[0u8; 16][..]);
            cache.dealloc(z, layout(16));
            // More frees than a class keeps: the rest go to the allocator.
            let many: Vec<*mut u8> = (0..DEPTH + 10).map(|_| cache.alloc(layout(64))).collect();
            for p in many {
                cache.dealloc(p, layout(64));
            }
            assert_eq!((*cache.len.get())[3], DEPTH);
            // Over-aligned and large layouts pass through.
            let big = Layout::from_size_align(64, 64).unwrap();
            let f = cache.alloc(big);
            assert_eq!(f as usize % 64, 0);
            cache.dealloc(f, big);
        }
    }

    #[test]
    fn human_sizes_print_like_redis() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(990448), "967.23K");
        assert_eq!(human(12300288), "11.73M");
        assert_eq!(human(25276071936), "23.54G");
    }

    #[test]
    fn rss_and_cpu_are_readable() {
        assert!(rss() > 0);
        assert!(total_system_memory() > 0);
        let (u, s) = cpu(libc::RUSAGE_SELF);
        assert!(u >= 0.0 && s >= 0.0);
    }
}
