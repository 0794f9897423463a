//! The hearsay chaos harness. Folders, top to bottom; imports point down only
//! (`scripts/import-graph --folders harness` checks it):
//!
//! - `cli/`: the subcommands (run, check, replay, report, compare, test-all, clean,
//!   doctor); the only folder that reads `output/`.
//! - `run/`: the phases of one test and its judgement (results.json), driving a target.
//! - `targets/`: one file per target behind the [`targets::Target`] interface.
//! - `faults/`: the schedule, the nemesis executor and its evidence, packet delay, clock.
//! - `env/`: namespaces and links, the registry of created resources and clean-up,
//!   processes, the recorder of the run folder's files.
//! - `output/`: summary, junit, report, compare and matrix tables, index: views of run
//!   folders; imports only `opts` and `env` below it, never `run/` or `cli/`.
//! - `sim/`: `hearsay sim`, the node's cluster core in deterministic simulated time;
//!   imports `run/`, `targets/` (pure helpers), `faults/`, `env/`, `opts`; read by
//!   `cli/` only.
//! - `opts`: the options of a test (a leaf anyone may read).

pub mod cli;
pub mod env;
pub mod faults;
pub mod opts;
pub mod output;
pub mod run;
pub mod sim;
pub mod targets;

/// For tests whose prerequisite (root, redis-server, libfaketime, ...) is missing:
/// prints why the test is skipped, but fails when `CI=true`, where every
/// prerequisite must be present.
pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prerequisite missing under CI=true: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// This process's resident set in KB (/proc/self/status), 0 if unknown.
pub fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds this thread has used (user + system), for benchmarks on a shared
/// machine where wall time also counts other processes' load.
pub fn thread_cpu_secs() -> f64 {
    // SAFETY: getrusage writes only into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}
