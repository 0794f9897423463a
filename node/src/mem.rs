//! Memory accounting for INFO memory: a global allocator wrapper that counts
//! the bytes in use (redis's `zmalloc` keeps the same counter), and the
//! process's resident set size from `/proc`.
//!
//! The binary installs [`Counting`] around its allocator; in tests and other
//! programs that do not, [`allocated`] reads 0.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// INFO memory's `mem_allocator`.
pub const ALLOCATOR_NAME: &str = "libc";

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
