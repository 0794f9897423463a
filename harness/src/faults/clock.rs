//! Per-node wall-clock skew through libfaketime, with the monotonic clock left real.
//!
//! Each node runs with `FAKETIME_TIMESTAMP_FILE` pointing at its own file whose content
//! ("+30", "-5", "+0") is the current offset in seconds; writing the file skews the
//! node live. Debian's redis-server links jemalloc, which deadlocks against libfaketime
//! at startup; a tiny malloc shim preloaded first (routing malloc to glibc) avoids it.
//! The shim is compiled with `cc` into the run folder at run time.

use crate::env::process::ProcessError;
use std::path::{Path, PathBuf};

/// Where Debian and Ubuntu install libfaketime, per architecture.
const LIBFAKETIME_PATHS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// The installed libfaketime, if any.
pub fn libfaketime() -> Option<PathBuf> {
    LIBFAKETIME_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

const SHIM_C: &str = r#"
/* Routes the malloc family to glibc so that jemalloc initialises only after
   libfaketime is up (avoids a startup self-deadlock). Built by hearsay. */
#define _GNU_SOURCE
#include <stddef.h>
#include <errno.h>
#include <dlfcn.h>
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
void *malloc(size_t n) { return __libc_malloc(n); }
void free(void *p) { __libc_free(p); }
void *calloc(size_t a, size_t b) { return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }
void *valloc(size_t n) { return __libc_valloc(n); }
void *pvalloc(size_t n) { return __libc_pvalloc(n); }
int posix_memalign(void **out, size_t a, size_t n) {
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
size_t malloc_usable_size(void *p) {
    static size_t (*real)(void *) = 0;
    if (!real) real = (size_t (*)(void *))dlvsym(RTLD_NEXT, "malloc_usable_size", "GLIBC_2.2.5");
    if (!real) real = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    return real ? real(p) : 0;
}
"#;

/// Errors preparing libfaketime.
#[derive(Debug, thiserror::Error)]
pub enum FaketimeError {
    #[error("libfaketime not found at {0} (apt-get install libfaketime)")]
    Missing(String),
    #[error("building the malloc shim: {0}")]
    Build(String),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Compiles the shim into `dir` and returns its path.
pub fn build_shim(dir: &Path) -> Result<PathBuf, FaketimeError> {
    if libfaketime().is_none() {
        return Err(FaketimeError::Missing(LIBFAKETIME_PATHS.join(" or ")));
    }
    std::fs::create_dir_all(dir).map_err(|source| FaketimeError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let src = dir.join("mallocshim.c");
    let out = dir.join("libmallocshim.so");
    std::fs::write(&src, SHIM_C).map_err(|source| FaketimeError::Io {
        path: src.display().to_string(),
        source,
    })?;
    let (src_s, out_s) = (src.display().to_string(), out.display().to_string());
    crate::env::sys::run(
        "cc",
        &["-shared", "-fPIC", "-O2", "-o", &out_s, &src_s, "-ldl"],
        None,
    )
    .map_err(|e| FaketimeError::Build(e.to_string()))?;
    Ok(out)
}

/// The environment a node needs to run under libfaketime with `file` as its offset.
pub fn env(shim: &Path, file: &Path) -> Vec<(String, String)> {
    vec![
        (
            "LD_PRELOAD".into(),
            format!(
                "{}:{}",
                shim.display(),
                libfaketime().unwrap_or_default().display()
            ),
        ),
        ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
        // Re-read the file on every call: skew takes effect at once (~2 µs per call).
        ("FAKETIME_NO_CACHE".into(), "1".into()),
        // Keep CLOCK_MONOTONIC real: faking it stalls tokio timers on backward jumps.
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// Writes an offset in whole seconds ("+30", "-5").
pub fn write_offset(file: &Path, secs: i64) -> Result<(), FaketimeError> {
    let text = if secs >= 0 {
        format!("+{secs}\n")
    } else {
        format!("{secs}\n")
    };
    // Write-then-rename so a reader never sees an empty file (= no offset).
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, file))
        .map_err(|source| FaketimeError::Io {
            path: file.display().to_string(),
            source,
        })
}

/// Writes the clock offset (seconds) of a node that runs under libfaketime.
pub fn set_offset(node: &crate::env::process::Node, secs: i64) -> Result<(), ProcessError> {
    let f = node.clock_file.as_ref().ok_or_else(|| {
        ProcessError::NotRunning(format!("{} runs without libfaketime", node.name))
    })?;
    write_offset(f, secs)
        .map_err(|e| node.io("write clock offset", std::io::Error::other(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_file_format() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("clock");
        write_offset(&f, 30).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "+30\n");
        write_offset(&f, -7).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "-7\n");
    }

    #[test]
    fn shim_skews_date_under_libfaketime() {
        if libfaketime().is_none() || crate::env::sys::which("cc").is_none() {
            crate::skip_or_fail("libfaketime or cc missing");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let shim = build_shim(d.path()).unwrap();
        let f = d.path().join("clock");
        write_offset(&f, 86400 * 365).unwrap();
        let mut cmd = std::process::Command::new("date");
        cmd.arg("+%Y");
        for (k, v) in env(&shim, &f) {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let faked: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let real: i32 = String::from_utf8_lossy(
            &std::process::Command::new("date")
                .arg("+%Y")
                .output()
                .unwrap()
                .stdout,
        )
        .trim()
        .parse()
        .unwrap();
        assert!(
            faked == real + 1 || faked == real + 2,
            "faked {faked} real {real}"
        );
    }
}
