//! Planted bugs are caught by the protocol checker that claims them, with evidence
//! naming the effect; the same seed without the bug is valid on the protocol
//! checkers. Each test is one whole run of 30 s workload (needs root, nft,
//! redis-server, libfaketime, cc), so they are ignored by default:
//! `cargo test -p hearsay --test protocol_bugs -- --ignored --test-threads 1`.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// One run; returns results.json.
fn run(target: &str, nemesis: &str, seed: &str, bug: Option<&str>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("registry");
    let results = dir.path().join("results");
    let mut args = vec![
        "run",
        "--target",
        target,
        "--nemesis",
        nemesis,
        "--time-limit",
        "30",
        "--nemesis-interval",
        "6",
        "--seed",
        seed,
        "--results-dir",
    ];
    let res = results.to_string_lossy().into_owned();
    args.push(&res);
    if let Some(b) = bug {
        args.extend(["--node-bug", b]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(&args)
        .env("HEARSAY_REGISTRY_DIR", &reg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let run_dir = latest(&results, target);
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("results.json"))
            .unwrap_or_else(|e| panic!("no results.json ({e}); run output:\n{text}")),
    )
    .unwrap();
    r
}

fn latest(results: &Path, target: &str) -> std::path::PathBuf {
    std::fs::canonicalize(results.join(format!("set-{target}")).join("latest"))
        .or_else(|_| std::fs::canonicalize(results.join("latest")))
        .unwrap()
}

fn effects(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["effect"].as_str().map(str::to_string))
        .collect()
}

#[test]
#[ignore = "30 s run; run with --ignored"]
fn clean_hearsay_run_is_protocol_valid() {
    let r = run("hearsay", "partition,kill", "11", None);
    let p = &r["protocol"];
    assert_eq!(p["valid"], Value::Bool(true), "{p:#}");
    assert!(
        p["fail-quorum"]["decisions"].as_u64().unwrap_or(0) > 0,
        "no FAIL decided: {p:#}"
    );
}

#[test]
#[ignore = "30 s run; run with --ignored"]
fn fail_without_quorum_is_caught_by_fail_quorum() {
    let r = run(
        "hearsay",
        "partition,kill",
        "11",
        Some("fail-without-quorum"),
    );
    let fq = &r["protocol"]["fail-quorum"];
    assert_eq!(fq["valid"], Value::Bool(false), "{fq:#}");
    assert!(
        effects(&fq["violations"])
            .iter()
            .any(|e| e.starts_with("FAIL without quorum")),
        "{fq:#}"
    );
}

#[test]
#[ignore = "30 s run; run with --ignored"]
fn count_replica_reports_is_caught_by_fail_quorum() {
    let r = run(
        "hearsay",
        "partition,kill",
        "11",
        Some("count-replica-reports"),
    );
    let fq = &r["protocol"]["fail-quorum"];
    assert_eq!(fq["valid"], Value::Bool(false), "{fq:#}");
    let rejected_replica = fq["violations"].as_array().into_iter().flatten().any(|v| {
        v["reports_rejected"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["why"] == "not a master")
    });
    assert!(rejected_replica, "{fq:#}");
}

// `no-update`, `stale-reports` and `ignore-epoch-collision` have no run here yet:
// hearsay-node cannot fail over (next issue) and cannot feed a redis replica, so no
// slot ever changes owner in a run; reports are deleted by "back online" gossip
// long before they could expire; formation gives every master a distinct epoch.
// Their checker logic is proven on hand-written logs in hearsay-checkers, and
// `ignore-epoch-collision`'s effect in the node's simulator test.
