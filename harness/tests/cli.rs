//! The CLI contract: exit codes and seeded determinism (no root needed).

use std::process::Command;

fn hearsay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(args)
        .output()
        .expect("run hearsay")
}

#[test]
fn bad_arguments_exit_254_and_help_exits_0() {
    assert_eq!(hearsay(&["frobnicate"]).status.code(), Some(254));
    assert_eq!(
        hearsay(&["run", "--nodes", "many"]).status.code(),
        Some(254)
    );
    assert_eq!(
        hearsay(&["run", "--target", "mongodb"]).status.code(),
        Some(254)
    );
    assert_eq!(hearsay(&["--help"]).status.code(), Some(0));
    let d = tempfile::tempdir().unwrap();
    let r = d.path().to_str().unwrap();
    // Semantically bad options are bad arguments too, and start nothing.
    let out = hearsay(&["run", "--nemesis", "flood", "--results-dir", r]);
    assert_eq!(
        out.status.code(),
        Some(254),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hearsay(&["run", "--nodes", "2", "--replicas", "2", "--results-dir", r]);
    assert_eq!(out.status.code(), Some(254));
}

#[test]
fn check_of_missing_folder_is_a_harness_error() {
    assert_eq!(
        hearsay(&["check", "/nonexistent/run"]).status.code(),
        Some(2)
    );
}

fn dry_run(seed: &str, dir: &std::path::Path) -> (String, serde_json::Value) {
    let out = hearsay(&[
        "run",
        "--dry-run",
        "--seed",
        seed,
        "--nemesis",
        "partition,pause,kill,clock,loss,delay",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "60",
        "--results-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("latest/test.json")).unwrap())
            .unwrap();
    let sched = std::fs::read_to_string(dir.join("latest/schedule.json")).unwrap();
    (sched, test)
}

#[test]
fn same_seed_gives_same_schedule_and_different_seed_differs() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (sa, ta) = dry_run("7", a.path());
    let (sb, _) = dry_run("7", b.path());
    let (sc, _) = dry_run("8", c.path());
    assert_eq!(sa, sb);
    assert_ne!(sa, sc);
    let planned: Vec<serde_json::Value> = serde_json::from_str(&sa).unwrap();
    assert!(
        planned.len() >= 8,
        "a 60 s schedule at 3 s interval has many faults"
    );
    assert_eq!(ta["seed"], 7);
    assert_eq!(ta["options"]["seed"], 7);
    // Stored options are enough to replay: they parse back as run options.
    let opts: hearsay_harness::opts::RunOpts =
        serde_json::from_value(ta["options"].clone()).unwrap();
    assert_eq!(opts.seed, Some(7));
}

#[test]
fn same_seed_gives_same_client_op_sequence_per_process() {
    use hearsay_workloads::set::{keys, ProcessGen};
    let ks = keys(16);
    for process in [0u64, 3, 17] {
        let seq = |seed| {
            let mut g = ProcessGen::new(seed, process, 0.1);
            (0..200).map(|_| g.next_op(&ks)).collect::<Vec<_>>()
        };
        assert_eq!(seq(7), seq(7));
        assert_ne!(seq(7), seq(8));
    }
}

#[test]
fn doctor_lists_every_prerequisite_with_a_fix() {
    let out = hearsay(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "root or CAP_NET_ADMIN",
        "nftables",
        "libfaketime",
        "redis-server",
        "hearsay-node",
    ] {
        assert!(text.contains(name), "doctor misses {name}: {text}");
    }
    // Exit 0 exactly when nothing required is missing.
    let failed = text.lines().any(|l| l.starts_with("[FAIL]"));
    assert_eq!(
        out.status.code(),
        Some(if failed { 2 } else { 0 }),
        "{text}"
    );
    if failed {
        assert!(text.contains("fix:"));
    }
}

/// A seed names the same schedule across versions of the harness: a nightly report's
/// seed must reproduce its faults after an upgrade. The fixture is the schedule.json of
/// `hearsay run --dry-run --seed 42 --nemesis all` (defaults otherwise); a change that
/// alters it changes what every stored seed means, and must say so.
#[test]
fn seed_42_schedule_is_stable_across_versions() {
    let d = tempfile::tempdir().unwrap();
    let out = hearsay(&[
        "run",
        "--dry-run",
        "--seed",
        "42",
        "--nemesis",
        "all",
        "--results-dir",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let got = std::fs::read_to_string(d.path().join("latest/schedule.json")).unwrap();
    let want = include_str!("fixtures/schedule-seed42-all.json");
    assert_eq!(got, want, "the seed-42 schedule changed");
}
