//! The event log's completeness marks on a real process: every start begins
//! with `started` at `seq` 0 and numbers its lines without gaps; a clean
//! shutdown ends with `stopped`; a SIGKILL leaves no `stopped` but loses no
//! line written before it.
//!
//! Ports 21760-21769.

mod common;

use std::time::Duration;

use common::{cmd, wait_until, Kind, Server};
use serde_json::Value;

/// The log split into process starts (each begins with `started`).
fn starts(events: &[Value]) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = Vec::new();
    for e in events {
        if e["event"] == "started" || out.is_empty() {
            out.push(Vec::new());
        }
        if let Some(last) = out.last_mut() {
            last.push(e.clone());
        }
    }
    out
}

fn assert_numbered(start: &[Value]) {
    for (i, e) in start.iter().enumerate() {
        assert_eq!(
            e["seq"].as_u64(),
            Some(i as u64),
            "line {i} of a start: {e}"
        );
    }
}

#[test]
fn each_start_is_numbered_from_started_and_a_clean_stop_ends_with_stopped() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start(Kind::Hearsay, 21760, root.path(), 1000);
    let id = s.myid();
    // Decisions of this process: slots, epochs, state.
    assert_eq!(
        cmd(s.port, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        "OK"
    );
    wait_until(Duration::from_secs(10), || {
        s.events()
            .iter()
            .any(|e| e["event"] == "cluster_state_changed")
    })
    .expect("cluster_state_changed is on file before we look");
    // SIGKILL: no `stopped`, and every line already written stays.
    let before_kill = s.events().len();
    s.kill9();
    let after_kill = s.events();
    assert_eq!(after_kill.len(), before_kill, "a SIGKILL loses no line");
    assert_ne!(
        after_kill.last().map(|e| e["event"].clone()),
        Some("stopped".into())
    );

    s.restart(1000);
    assert!(cmd(s.port, &["CLUSTER", "BUMPEPOCH"]).contains("BUMPED"));
    assert!(s.terminate(), "SIGTERM ends the process");

    let events = s.events();
    let raw = std::fs::read_to_string(s.dir.join("events.jsonl")).unwrap_or_default();
    assert_eq!(raw.lines().count(), events.len(), "every line parses");
    let starts = starts(&events);
    assert_eq!(starts.len(), 2, "two process starts");
    for (k, start) in starts.iter().enumerate() {
        assert_eq!(start[0]["event"], "started", "start {k} opens with started");
        assert_eq!(start[0]["id"], id.as_str());
        assert_numbered(start);
        assert!(start.iter().all(|e| e["me"] == id.as_str()));
    }
    let last = starts[1].last().cloned().unwrap_or_default();
    assert_eq!(
        (&last["event"], &last["reason"]),
        (&"stopped".into(), &"SIGTERM".into()),
        "a clean shutdown's last line"
    );
    assert!(
        starts[0].iter().all(|e| e["event"] != "stopped"),
        "the killed start has no stopped line"
    );
}
