//! Recorded histories from real runs against redis-server 7.0.15 (filtered to a few
//! keys; keys are independent for the set checker), each with its known verdict.

use hearsay_checkers::history::History;
use hearsay_checkers::set::{check, SetOptions};
use hearsay_checkers::Valid;
use std::path::Path;

fn fixture(name: &str) -> History {
    History::read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn packet_loss_run_lost_acknowledged_writes() {
    // 40 % loss on three nodes made redis fail over; acknowledged SADDs on the old
    // primaries were lost (asynchronous replication).
    let r = check(
        &fixture("set-redis-loss-lost-writes.jsonl"),
        SetOptions::default(),
    );
    assert_eq!(r.valid, Valid::False);
    assert!(r.lost.count > 0);
    assert_eq!(r.unexpected.count, 0);
    assert!(r.never_read.is_empty());
}

#[test]
fn partition_and_clock_run_is_valid() {
    let r = check(
        &fixture("set-redis-partition-clock-valid.jsonl"),
        SetOptions::default(),
    );
    assert_eq!(r.valid, Valid::True, "{r:?}");
    assert!(r.ok_count > 100);
}

#[test]
fn killed_run_parses_and_is_never_judged_valid() {
    let h = fixture("set-redis-killed-mid-run.jsonl");
    assert!(h.truncated_tail);
    let r = check(&h, SetOptions::default());
    // No final reads happened: the adds cannot be judged.
    assert_eq!(r.valid, Valid::Unknown);
    assert!(!r.never_read.is_empty());
}
