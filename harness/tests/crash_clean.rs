//! Crash safety: a harness killed with SIGKILL mid-run leaves a parseable history, and
//! `hearsay clean` then removes every namespace, link, nft table and process of that
//! run; a harness interrupted with SIGINT cleans up by itself. Needs root, nft and
//! redis-server.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn start_run(reg: &Path, results: &Path, extra: &[&str]) -> Child {
    let mut args = vec![
        "run",
        "--target",
        "redis",
        "--nemesis",
        "partition,pause,loss",
        "--nemesis-interval",
        "2",
        "--time-limit",
        "40",
        "--seed",
        "5",
        "--results-dir",
    ];
    args.push(results.to_str().unwrap());
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(&args)
        .env("HEARSAY_REGISTRY_DIR", reg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for_history(results: &Path, lines: usize) -> PathBuf {
    let t0 = Instant::now();
    loop {
        let h = results.join("latest/history.jsonl");
        let n = std::fs::read_to_string(&h)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= lines {
            return std::fs::canonicalize(results.join("latest")).unwrap();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "run never got going"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn registry(reg: &Path) -> Option<hearsay_harness::env::registry::RunRecord> {
    let e = std::fs::read_dir(reg)
        .ok()?
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))?;
    serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()
}

#[test]
fn sigkill_mid_run_then_clean_leaves_nothing_and_history_checks() {
    if !common::require(true, true, false) {
        return;
    }
    let reg = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let mut child = start_run(reg.path(), results.path(), &[]);
    let run_dir = wait_for_history(results.path(), 300);
    let rec = registry(reg.path()).expect("registry file of the live run");
    assert!(!rec.procs.is_empty() && !rec.netns.is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    // The kill really left things behind for `clean` to find.
    assert!(!common::leftovers(&rec.prefix).is_empty());
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .arg("clean")
        .env("HEARSAY_REGISTRY_DIR", reg.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        common::leftovers(&rec.prefix).is_empty(),
        "{:?}",
        common::leftovers(&rec.prefix)
    );
    for p in &rec.procs {
        assert!(
            !hearsay_harness::env::sys::is_same_process(p.pid, p.start),
            "{p:?} still runs"
        );
    }
    assert!(
        registry(reg.path()).is_none(),
        "registry file removed after clean"
    );
    // The killed run's history is still judged: never "valid" (it is incomplete).
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .arg("check")
        .arg(&run_dir)
        .output()
        .unwrap();
    let code = out.status.code();
    assert!(
        code == Some(1) || code == Some(2),
        "check exit {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["complete-run"], false);
    assert!(results["set"]["attempt_count"].as_u64().unwrap() > 50);
}

#[test]
fn sigint_mid_run_tears_down_by_itself() {
    if !common::require(true, true, false) {
        return;
    }
    let reg = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let mut child = start_run(reg.path(), results.path(), &[]);
    wait_for_history(results.path(), 200);
    let rec = registry(reg.path()).expect("registry file of the live run");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(
        common::leftovers(&rec.prefix).is_empty(),
        "{:?}",
        common::leftovers(&rec.prefix)
    );
    for p in &rec.procs {
        assert!(
            !hearsay_harness::env::sys::is_same_process(p.pid, p.start),
            "{p:?} still runs"
        );
    }
    assert!(registry(reg.path()).is_none());
}

#[test]
fn panic_mid_run_tears_down_and_exits_2() {
    if !common::require(true, true, false) {
        return;
    }
    let reg = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args([
            "run",
            "--target",
            "redis",
            "--time-limit",
            "5",
            "--results-dir",
        ])
        .arg(results.path())
        .env("HEARSAY_REGISTRY_DIR", reg.path())
        .env("HEARSAY_TEST_PANIC", "after-form")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("HEARSAY_TEST_PANIC"), "{stderr}");
    let test: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results.path().join("latest/test.json")).unwrap(),
    )
    .unwrap();
    let prefix = test["prefix"].as_str().unwrap();
    assert!(
        common::leftovers(prefix).is_empty(),
        "{:?}",
        common::leftovers(prefix)
    );
    assert!(
        registry(reg.path()).is_none(),
        "registry removed after teardown"
    );
}

#[test]
fn a_new_run_removes_a_crashed_runs_leftovers_and_says_so() {
    if !common::require(true, true, false) {
        return;
    }
    let reg = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let mut child = start_run(reg.path(), results.path(), &[]);
    wait_for_history(results.path(), 100);
    let rec = registry(reg.path()).expect("registry file of the live run");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    assert!(!common::leftovers(&rec.prefix).is_empty());
    // The next run (stopped early by the test hook) cleans first and names what it removed.
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args([
            "run",
            "--target",
            "redis",
            "--time-limit",
            "5",
            "--results-dir",
        ])
        .arg(results.path())
        .env("HEARSAY_REGISTRY_DIR", reg.path())
        .env("HEARSAY_TEST_PANIC", "after-form")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("removed leftovers of crashed run {}", rec.prefix)),
        "{stderr}"
    );
    assert!(
        common::leftovers(&rec.prefix).is_empty(),
        "{:?}",
        common::leftovers(&rec.prefix)
    );
    for p in &rec.procs {
        assert!(!hearsay_harness::env::sys::is_same_process(p.pid, p.start));
    }
}
