//! The Sentinel rules on log fixtures: `valid/` is a real failover of three
//! redis-sentinel 7.0.15 processes (addresses rewritten); every other folder breaks
//! one rule (its README says which) and must be caught by that rule.

use hearsay_checkers::sentinel::{check, Setup};
use hearsay_checkers::Valid;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sentinel")
        .join(case)
}

fn judge(case: &str) -> (Valid, Value) {
    let setup: Value = serde_json::from_slice(
        &std::fs::read(dir("sentinel.json")).expect("sentinel.json fixture"),
    )
    .expect("json");
    let setup = Setup::from_json(&setup).expect("setup");
    let logs: Vec<(String, Option<Vec<u8>>)> = ["n4", "n5", "n6"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                std::fs::read(dir(case).join(format!("{n}.log"))).ok(),
            )
        })
        .collect();
    let snaps = std::fs::read(dir(case).join("snapshots.jsonl"))
        .or_else(|_| std::fs::read(dir("valid").join("snapshots.jsonl")))
        .ok();
    check(&setup, &logs, snaps.as_deref())
}

fn status(v: &Value, rule: &str) -> String {
    v["coverage"]
        .as_array()
        .and_then(|c| c.iter().find(|r| r["rule"] == rule))
        .map(|r| r["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no rule {rule} in {v}"))
}

#[test]
fn a_real_failover_holds_every_rule() {
    let (valid, v) = judge("valid");
    assert_eq!(valid, Valid::True, "{v:#}");
    for rule in [
        "odown-quorum",
        "one-vote-per-epoch",
        "failover-by-elected-leader",
        "epochs-never-go-back",
        "converges-after-heal",
    ] {
        assert_eq!(status(&v, rule), "held", "{rule}: {v:#}");
    }
    // n4 won epoch 1 with its own vote and n6's, and switched n1 -> n3.
    let f = &v["failovers"][0];
    assert_eq!(f["sentinel"], "n4");
    assert_eq!(f["from"], "n1");
    assert_eq!(f["to"], "n3");
    assert_eq!(f["votes_from"], serde_json::json!(["n4", "n6"]));
}

#[test]
fn each_broken_history_is_caught_by_its_rule() {
    for (case, rule) in [
        ("odown-without-quorum", "odown-quorum"),
        ("double-vote", "one-vote-per-epoch"),
        ("unelected-failover", "failover-by-elected-leader"),
        ("switch-without-election", "failover-by-elected-leader"),
        ("epoch-back", "epochs-never-go-back"),
        ("split-final", "converges-after-heal"),
    ] {
        let (valid, v) = judge(case);
        assert_eq!(valid, Valid::False, "{case}: {v:#}");
        assert_eq!(status(&v, rule), "violated", "{case}: {v:#}");
    }
}

#[test]
fn a_cut_or_missing_log_makes_the_log_rules_unknown() {
    let (valid, v) = judge("cut-log");
    assert_eq!(valid, Valid::Unknown, "{v:#}");
    for rule in [
        "odown-quorum",
        "one-vote-per-epoch",
        "failover-by-elected-leader",
    ] {
        assert_eq!(status(&v, rule), "unknown", "{rule}: {v:#}");
    }
    assert!(v["evidence-damage"][0]["file"] == "nodes/n5/log", "{v:#}");
    let (valid, v) = judge("no-such-case");
    assert_eq!(valid, Valid::Unknown, "{v:#}");
    assert!(v["evidence-damage"]
        .as_array()
        .is_some_and(|d| d.len() == 3));
}
