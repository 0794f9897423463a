//! Acceptance benchmarks, ignored by default. Run with:
//!
//! `cargo test --release -p hearsay-checkers --test bench -- --ignored --nocapture --test-threads=1`
//!
//! Each case generates a history from a sequential model, writes it as JSON lines,
//! then times reading + checking it and reports the peak resident memory of that
//! phase (VmHWM, reset through /proc/self/clear_refs before the phase).

use hearsay_checkers::gen::{self, GenOptions};
use hearsay_checkers::history::History;
use hearsay_checkers::linear::{self, LinearOptions};
use hearsay_checkers::set::{self as set_checker, SetOptions};
use hearsay_checkers::set_full;
use hearsay_checkers::{counter, Valid};
use std::time::Instant;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn reset_hwm() {
    // "5" resets the peak RSS counter (Linux >= 4.0). Freed heap may stay resident,
    // so `bench_all` also runs every case in a fresh process.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Generates the history and writes it, then reads + checks it in a fresh process
/// (this test again, with `HEARSAY_BENCH_FILE` set) so that the generator's memory
/// does not count; returns the verdict.
fn measure(
    name: &str,
    test: &str,
    gen: impl FnOnce() -> Vec<hearsay_checkers::Op>,
    check: impl Fn(&History) -> Valid,
) -> Valid {
    if let Ok(path) = std::env::var("HEARSAY_BENCH_FILE") {
        reset_hwm();
        let t0 = Instant::now();
        let h = History::read(std::path::Path::new(&path)).expect("read history");
        let parsed = t0.elapsed();
        let valid = check(&h);
        let total = t0.elapsed();
        println!(
            "BENCH {name}: {} lines, parse {:.2}s, check {:.2}s, total {:.2}s, peak RSS {} MiB, valid {valid:?}",
            h.ops.len(),
            parsed.as_secs_f64(),
            (total - parsed).as_secs_f64(),
            total.as_secs_f64(),
            vm_hwm_kib() / 1024
        );
        return valid;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, gen::to_jsonl(&gen())).expect("write history");
    let exe = std::env::current_exe().expect("own test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            test,
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HEARSAY_BENCH_FILE", &path)
        .output()
        .expect("run checking child");
    let text = String::from_utf8_lossy(&out.stdout);
    for l in text.lines().filter(|l| l.contains("BENCH")) {
        println!("{l}");
    }
    assert!(out.status.success(), "child failed: {text}");
    Valid::True
}

/// Runs every case in its own process so that peaks do not leak between cases.
#[test]
#[ignore]
fn bench_all() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    for case in [
        "bench_set_1m_lines",
        "bench_set_1m",
        "bench_counter_1m_lines",
        "bench_counter_1m",
        "bench_register_100k",
        "bench_register_100k_few_keys",
    ] {
        let out = std::process::Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                case,
                "--nocapture",
                "--test-threads=1",
            ])
            .output();
        match out {
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stdout);
                for l in text.lines().filter(|l| l.contains("BENCH")) {
                    println!("{l}");
                }
                if !o.status.success() {
                    println!("BENCH {case}: FAILED ({})", o.status);
                }
            }
            Err(e) => println!("BENCH {case}: could not run: {e}"),
        }
    }
}

fn set_opts(ops: usize) -> GenOptions {
    GenOptions {
        seed: 1,
        ops,
        // Reads return whole sets: keep them rare and sets small, as a real run does.
        keys: 1000,
        concurrency: 20,
        info_rate: 0.01,
        read_rate: 0.02,
        overlap: 4,
    }
}

fn counter_opts(ops: usize) -> GenOptions {
    GenOptions {
        seed: 2,
        ops,
        keys: 100,
        concurrency: 20,
        info_rate: 0.01,
        read_rate: 0.3,
        overlap: 4,
    }
}

fn counter_check(h: &History) -> Valid {
    counter::check(h).map(|r| r.valid).unwrap_or(Valid::Unknown)
}

fn register_check(h: &History) -> Valid {
    linear::check(h, LinearOptions::default())
        .map(|r| r.valid)
        .unwrap_or(Valid::Unknown)
}

fn register_opts(seed: u64, keys: usize) -> GenOptions {
    GenOptions {
        seed,
        ops: 100_000,
        keys,
        concurrency: 20,
        info_rate: 0.01,
        read_rate: 0.5,
        overlap: 20,
    }
}

/// 1M history lines (Jepsen counts invocations and completions as ops).
#[test]
#[ignore]
fn bench_set_1m_lines() {
    let v = measure(
        "set 1M lines",
        "bench_set_1m_lines",
        || gen::set(&set_opts(500_000)),
        |h| {
            set_checker::check(h, SetOptions::default())
                .valid
                .and(set_full::check(h).valid)
        },
    );
    assert_eq!(v, Valid::True);
}

#[test]
#[ignore]
fn bench_counter_1m_lines() {
    let v = measure(
        "counter 1M lines",
        "bench_counter_1m_lines",
        || gen::counter(&counter_opts(500_000)),
        counter_check,
    );
    assert_eq!(v, Valid::True);
}

/// 1M client operations (2M lines).
#[test]
#[ignore]
fn bench_set_1m() {
    let v = measure(
        "set 1M ops",
        "bench_set_1m",
        || gen::set(&set_opts(1_000_000)),
        |h| {
            set_checker::check(h, SetOptions::default())
                .valid
                .and(set_full::check(h).valid)
        },
    );
    assert_eq!(v, Valid::True);
}

#[test]
#[ignore]
fn bench_counter_1m() {
    let v = measure(
        "counter 1M ops",
        "bench_counter_1m",
        || gen::counter(&counter_opts(1_000_000)),
        counter_check,
    );
    assert_eq!(v, Valid::True);
}

#[test]
#[ignore]
fn bench_register_100k() {
    let v = measure(
        "linearizability 100k ops / 1000 keys / conc 20",
        "bench_register_100k",
        || gen::register(&register_opts(3, 1000), 0.2),
        register_check,
    );
    assert_eq!(v, Valid::True);
}

#[test]
#[ignore]
fn bench_register_100k_few_keys() {
    // Harder: 100 keys, so ~1000 ops per key with real overlap.
    let v = measure(
        "linearizability 100k ops / 100 keys / conc 20",
        "bench_register_100k_few_keys",
        || gen::register(&register_opts(4, 100), 0.2),
        register_check,
    );
    assert_eq!(v, Valid::True);
}
