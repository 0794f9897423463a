//! Damaged evidence never gives a confident verdict: each damage below is done to a
//! copy of one real run's folder, and `hearsay check` must answer `unknown` (exit 2)
//! or a clear error, never `valid` or an invented violation. Options that would make a
//! run vacuous are refused before anything starts. Needs root and redis-server.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn hearsay(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dst = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dst);
        } else if p.is_file() {
            std::fs::copy(&p, &dst).unwrap();
        }
    }
}

/// A fresh copy of the run folder, damaged by `damage`; returns `hearsay check`'s exit
/// code and output, and results.json's `unknown-because`.
fn check_damaged(run: &Path, name: &str, damage: impl FnOnce(&Path)) -> (Option<i32>, String) {
    let dir = run.parent().unwrap().join(format!("damaged-{name}"));
    copy_dir(run, &dir);
    damage(&dir);
    let (code, text) = hearsay(&["check", dir.to_str().unwrap()]);
    let why = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|r| r["unknown-because"].to_string())
        .unwrap_or_default();
    (code, format!("{text}\nunknown-because: {why}"))
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(p: &Path, l: &[String]) {
    std::fs::write(p, l.join("\n") + "\n").unwrap();
}

fn real_run(results: &Path) -> PathBuf {
    let (code, text) = hearsay(&[
        "run",
        "--target",
        "redis",
        "--nemesis",
        "kill",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "10",
        "--seed",
        "3",
        "--results-dir",
        results.to_str().unwrap(),
    ]);
    assert!(code == Some(0) || code == Some(1), "{text}");
    std::fs::canonicalize(results.join("latest")).unwrap()
}

#[test]
fn damaged_run_folders_are_never_judged_with_confidence() {
    if !common::require(true, true, false) {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let run = real_run(results.path());
    let (code, text) = hearsay(&["check", run.to_str().unwrap()]);
    assert!(code == Some(0) || code == Some(1), "undamaged: {text}");

    // An event log cut in half at a line boundary: the node's `stopped` is missing.
    let (code, text) = check_damaged(&run, "events-half", |d| {
        let p = d.join("nodes/n1/events.jsonl");
        let l = lines(&p);
        write_lines(&p, &l[..l.len() / 2]);
    });
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("nodes/n1/events.jsonl"), "{text}");

    // An event line cut mid-way (no newline at the end).
    let (code, text) = check_damaged(&run, "events-cut", |d| {
        let p = d.join("nodes/n2/events.jsonl");
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() - 7]).unwrap();
    });
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("cut short"), "{text}");

    // One byte that is not UTF-8 inside an event log.
    let (code, text) = check_damaged(&run, "events-utf8", |d| {
        let p = d.join("nodes/n3/events.jsonl");
        let mut b = std::fs::read(&p).unwrap();
        let at = b.iter().position(|c| *c == b'"').unwrap() + 1;
        b.insert(at, 0xff);
        std::fs::write(&p, b).unwrap();
    });
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("not UTF-8"), "{text}");

    // A line deleted from the middle of an event log (seq gap).
    let (code, text) = check_damaged(&run, "events-gap", |d| {
        let p = d.join("nodes/n4/events.jsonl");
        let mut l = lines(&p);
        l.remove(1);
        write_lines(&p, &l);
    });
    assert_eq!(code, Some(2), "{text}");

    // A panic line followed by a byte that is not UTF-8 in a node's stdout.
    let (code, text) = check_damaged(&run, "panic", |d| {
        let mut b = b"thread 'main' panicked at node/src/main.rs:1:1:\n".to_vec();
        b.push(0xff);
        std::fs::write(d.join("nodes/n5/stdout.log"), b).unwrap();
    });
    assert_eq!(code, Some(1), "{text}");

    // test.json missing, or not JSON: an error, never a guess at the workload.
    let (code, text) = check_damaged(&run, "test-missing", |d| {
        std::fs::remove_file(d.join("test.json")).unwrap();
    });
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("test.json"), "{text}");
    let (code, text) = check_damaged(&run, "test-garbage", |d| {
        std::fs::write(d.join("test.json"), "{\"options\": ").unwrap();
    });
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("test.json"), "{text}");

    // A garbage last line without a newline.
    let (code, text) = check_damaged(&run, "history-garbage-tail", |d| {
        let p = d.join("history.jsonl");
        let mut b = std::fs::read(&p).unwrap();
        b.extend_from_slice(b"garbage");
        std::fs::write(&p, b).unwrap();
    });
    assert_eq!(code, Some(2), "{text}");

    // Reversed and shuffled histories: an error naming the line.
    let (code, text) = check_damaged(&run, "history-reversed", |d| {
        let p = d.join("history.jsonl");
        let mut l = lines(&p);
        l.reverse();
        write_lines(&p, &l);
    });
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("line 1"), "{text}");
    let (code, text) = check_damaged(&run, "history-shuffled", |d| {
        let p = d.join("history.jsonl");
        let mut l = lines(&p);
        l.swap(10, 20);
        write_lines(&p, &l);
    });
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("line 11"), "{text}");

    // A replayed schedule naming a node the run does not have: refused (254).
    let bad = run.parent().unwrap().join("schedule-bad-node");
    copy_dir(&run, &bad);
    let p = bad.join("history.jsonl");
    let l: Vec<String> = lines(&p)
        .into_iter()
        .map(|x| {
            if x.contains("\"resolved\"") && x.contains("\"nodes\":[") {
                let i = x.find("\"nodes\":[").unwrap() + 9;
                format!("{}9,{}", &x[..i], &x[i..])
            } else {
                x
            }
        })
        .collect();
    write_lines(&p, &l);
    let (code, text) = hearsay(&[
        "run",
        "--dry-run",
        "--schedule-from",
        bad.to_str().unwrap(),
        "--results-dir",
        results.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(254), "{text}");
    assert!(text.contains("node index 9"), "{text}");
}

#[test]
fn options_that_cannot_work_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().to_str().unwrap();
    for bad in [
        &["--node-timeout", "0"][..],
        &["--op-timeout", "0"],
        &["--read-fraction", "1.5"],
        &["--keys", "0"],
        &["--snapshot-interval", "10"],
        &["--loglevel", "loud"],
        &["--nemesis-interval", "0"],
        &["--claims", "eventual"],
    ] {
        let mut args = vec!["run", "--dry-run", "--results-dir", r];
        args.extend_from_slice(bad);
        let (code, text) = hearsay(&args);
        assert_eq!(code, Some(254), "{bad:?}: {text}");
    }
}

#[test]
fn replaying_a_run_without_faults_is_refused() {
    // A history with no nemesis op: there is nothing to replay.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("history.jsonl"),
        "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"add\",\"value\":{\"key\":\"k\",\"element\":1}}\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, text) = hearsay(&[
        "run",
        "--dry-run",
        "--schedule-from",
        d.path().to_str().unwrap(),
        "--results-dir",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(254), "{text}");
    assert!(text.contains("no fault"), "{text}");
}
