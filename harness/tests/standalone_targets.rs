//! The Sentinel and twemproxy targets end to end, short: a run each through the CLI
//! gives the data verdict with its claims, the target's protocol section (Sentinel's
//! rules from the sentinels' logs; none for twemproxy), summary.json and junit.xml;
//! `hearsay check` agrees offline; nothing of the run is left on the machine. Needs
//! root, nft, redis-server, redis-sentinel (or redis-server --sentinel) and nutcracker.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};

fn latest(results: &Path) -> PathBuf {
    std::fs::canonicalize(results.join("latest")).unwrap()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn nutcracker() -> bool {
    hearsay_harness::env::sys::which("nutcracker").is_some()
        || Path::new("/usr/sbin/nutcracker").is_file()
}

/// Runs one test; returns its folder after checking what every target must leave.
fn run(args: &[&str]) -> (tempfile::TempDir, PathBuf, Value) {
    let reg = tempfile::tempdir().unwrap();
    let res = tempfile::tempdir().unwrap();
    let r = res.path().to_str().unwrap();
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--results-dir", r]);
    let (code, out, err) = common::hearsay(&all, reg.path());
    assert!(
        code == 0 || code == 1,
        "run {args:?} exit {code}:\n{out}\n{err}"
    );
    let dir = latest(res.path());
    for f in [
        "results.json",
        "summary.json",
        "junit.xml",
        "report.html",
        "history.jsonl",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    let results = read_json(&dir.join("results.json"));
    // Offline judgement agrees with the run's.
    let (ccode, cout, cerr) = common::hearsay(&["check", dir.to_str().unwrap()], reg.path());
    assert_eq!(ccode, code, "check disagrees:\n{cout}\n{cerr}");
    // Everything of the run is gone.
    let prefix = read_json(&dir.join("test.json"))["prefix"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!prefix.is_empty());
    let left = common::leftovers(&prefix);
    assert!(left.is_empty(), "leftovers of {prefix}: {left:?}");
    (res, dir, results)
}

#[test]
fn sentinel_run_gives_data_and_sentinel_verdicts() {
    if !common::require(true, true, false) {
        return;
    }
    sentinel_case("redis");
}

/// hearsay-node as the data server under real sentinels: REPLICAOF, INFO
/// replication and PSYNC are what Sentinel drives a failover with.
#[test]
fn sentinel_over_hearsay_node_gives_the_same_verdicts() {
    if !common::require(true, true, false) {
        return;
    }
    let (_res, dir) = sentinel_case("hearsay");
    let log = std::fs::read_to_string(dir.join("nodes/n1/log")).unwrap();
    assert!(
        log.contains("hearsay-node version="),
        "n1 is no hearsay-node"
    );
}

/// A short Sentinel run; returns the results dir (removed when dropped) and
/// the run's folder.
fn sentinel_case(server: &str) -> (tempfile::TempDir, PathBuf) {
    let (res, dir, r) = run(&[
        "--server",
        server,
        "--target",
        "sentinel",
        "--workload",
        "set",
        "--nemesis",
        "partition,pause,kill",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "20",
        "--node-timeout",
        "1000",
        // Seed 5 draws the master with a minority of the sentinels, a bridge, and a
        // kill of the master: failovers for the Sentinel rules to judge.
        "--seed",
        "5",
    ]);
    assert!(dir.join("sentinel.json").is_file());
    for n in ["n4", "n5", "n6"] {
        assert!(dir.join("nodes").join(n).join("log").is_file(), "{n}");
    }
    let p = &r["protocol"];
    assert_eq!(p["checker"], "sentinel", "{p:#}");
    let rules: Vec<&str> = p["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["rule"].as_str())
        .collect();
    for rule in [
        "odown-quorum",
        "one-vote-per-epoch",
        "failover-by-elected-leader",
        "epochs-never-go-back",
        "converges-after-heal",
    ] {
        assert!(rules.contains(&rule), "{rule} not in {rules:?}");
    }
    // The sentinels' logs are intact, so no rule is unknown; real redis-sentinel
    // keeps every rule.
    assert!(p["evidence-damage"].as_array().unwrap().is_empty(), "{p:#}");
    assert_eq!(p["valid"], true, "{p:#}");
    assert!(
        p["failovers"].as_array().is_some_and(|f| !f.is_empty()),
        "no failover carried out: {p:#}"
    );
    assert!(
        r["claims"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("sentinel claims")),
        "{:#}",
        r["claims"]
    );
    assert!(r["set"]["valid"].is_boolean() || r["set"]["valid"].is_string());
    assert!(
        r["faults"]["realised"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "{:#}",
        r["faults"]
    );
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["target"], "sentinel", "{summary:#}");
    (res, dir)
}

#[test]
fn twemproxy_run_gives_verdicts() {
    if !common::require(true, true, false) {
        return;
    }
    if !nutcracker() {
        hearsay_harness::skip_or_fail("needs nutcracker (apt-get install nutcracker)");
        return;
    }
    let (_res, dir, r) = run(&[
        "--target",
        "twemproxy",
        "--workload",
        "set",
        "--nemesis",
        "kill,partition",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "15",
        "--node-timeout",
        "1000",
        "--auto-eject",
        "yes",
        "--appendonly",
        "no",
        "--seed",
        "4",
    ]);
    assert!(dir.join("twemproxy.json").is_file());
    assert!(
        r["protocol"]["skipped"].as_str().is_some(),
        "{:#}",
        r["protocol"]
    );
    let c = &r["claims"];
    assert!(
        c["summary"]
            .as_str()
            .is_some_and(|s| s.contains("twemproxy claims")),
        "{c:#}"
    );
    // Whatever the set checker found is judged against twemproxy's mechanisms.
    assert!(c["unexplained"].is_u64(), "{c:#}");
}
