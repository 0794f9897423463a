//! convergence, epochs and latency on hand-written runs.

use hearsay_checkers::history::History;
use hearsay_checkers::run_data::RunData;
use hearsay_checkers::{convergence, epochs, latency, Valid};
use serde_json::json;

const BASE_MONO: i64 = 1_000_000;
const BASE_WALL: i64 = 1_700_000_000_000;

fn id(n: usize) -> String {
    char::from(b'a' + n as u8).to_string().repeat(40)
}

/// Views of a 3-master cluster; `owner2` owns the last range, with `epoch2`.
fn view(me: usize, owner2: usize, epoch2: u64) -> String {
    let mut s = String::new();
    for i in 0..4 {
        let me_flag = if i == me { "myself," } else { "" };
        let (role, master, epoch, slots) = match i {
            0 => ("master", "-".to_string(), 1, "0-5460".to_string()),
            1 => ("master", "-".to_string(), 2, "5461-10922".to_string()),
            _ if i == owner2 => ("master", "-".to_string(), epoch2, "10923-16383".to_string()),
            _ => ("slave", id(owner2), epoch2, String::new()),
        };
        s.push_str(&format!(
            "{} 127.0.0.1:{}@1 {me_flag}{role} {master} 0 0 {epoch} connected {slots}\n",
            id(i),
            7000 + i
        ));
    }
    s
}

fn snaps(rounds: &[(u64, Vec<String>)]) -> String {
    let mut out = String::new();
    for (t, views) in rounds {
        for (n, v) in views.iter().enumerate() {
            out.push_str(
                &json!({"time": t * 1_000_000, "node": format!("n{n}"), "nodes": v}).to_string(),
            );
            out.push('\n');
        }
    }
    out
}

fn history(lines: &[serde_json::Value]) -> History {
    let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    History::parse(&text, "h").unwrap()
}

fn heal_at(ms: u64) -> History {
    history(&[
        json!({"index": 0, "time": ms * 1_000_000, "process": "nemesis", "type": "info", "f": "heal-all", "value": null}),
    ])
}

fn data(h: &History, snapshots: &str, logs: Vec<(usize, Vec<serde_json::Value>)>) -> RunData {
    let test = json!({"options": {"node_timeout": 1000, "target": "hearsay"}});
    let tb = json!({"mono_ms": BASE_MONO, "wall_ms": BASE_WALL});
    let node_logs: Vec<(String, Option<String>)> = (0..4)
        .map(|n| {
            let mut text = json!({"node": id(n), "wall_ms": BASE_WALL, "mono_ms": BASE_MONO, "event": "started", "id": id(n)}).to_string() + "\n";
            for (k, evs) in &logs {
                if *k == n {
                    for e in evs {
                        let mut o = json!({"node": id(n), "wall_ms": BASE_WALL + e["t"].as_i64().unwrap_or(0), "mono_ms": BASE_MONO + e["t"].as_i64().unwrap_or(0)});
                        for (key, v) in e.as_object().unwrap() {
                            o[key] = v.clone();
                        }
                        text.push_str(&(o.to_string() + "\n"));
                    }
                }
            }
            (format!("n{n}"), Some(text))
        })
        .collect();
    RunData::build(&test, Some(&tb), h, snapshots, &node_logs)
}

fn good(t: u64) -> (u64, Vec<String>) {
    (t, (0..4).map(|n| view(n, 2, 3)).collect())
}

#[test]
fn converged_run_reports_its_time() {
    let mut split = good(11_000);
    split.1[0] = view(0, 3, 3); // n0 still thinks n3 owns the last range
    let s = snaps(&[good(9_000), split, good(12_000), good(13_000)]);
    let r = convergence::check(&data(&heal_at(10_000), &s, vec![]), None);
    assert_eq!(r.valid, Valid::True, "{r:?}");
    assert_eq!(r.convergence_ms, Some(2_000));
}

#[test]
fn diverged_slot_maps_are_caught() {
    let mut split = good(12_000);
    split.1[0] = view(0, 3, 4);
    let s = snaps(&[good(11_000), split]);
    let r = convergence::check(&data(&heal_at(10_000), &s, vec![]), None);
    assert_eq!(r.valid, Valid::False);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("slot maps differ: slot 10923")),
        "{r:?}"
    );
}

#[test]
fn shared_config_epoch_and_slow_convergence_are_caught() {
    let shared = (12_000, (0..4).map(|n| view(n, 2, 2)).collect::<Vec<_>>());
    let r = convergence::check(&data(&heal_at(10_000), &snaps(&[shared]), vec![]), None);
    assert_eq!(r.valid, Valid::False);
    assert!(
        r.problems.iter().any(|p| p.contains("share configEpoch 2")),
        "{r:?}"
    );
    let r = convergence::check(
        &data(&heal_at(10_000), &snaps(&[good(40_000)]), vec![]),
        Some(5_000),
    );
    assert_eq!(r.valid, Valid::False);
    assert_eq!(r.convergence_ms, Some(30_000));
}

#[test]
fn epochs_clean_run_is_valid() {
    let logs = vec![
        (
            3,
            vec![
                json!({"t": 100, "event": "failover_started", "epoch": 7}),
                json!({"t": 200, "event": "failover_won"}),
            ],
        ),
        (
            0,
            vec![json!({"t": 150, "event": "vote_granted", "to": id(3), "epoch": 7})],
        ),
        (
            1,
            vec![
                json!({"t": 150, "event": "vote_granted", "to": id(3), "epoch": 7}),
                json!({"t": 150, "event": "current_epoch_changed", "from": 3, "to": 7, "reason": "header"}),
            ],
        ),
    ];
    let s = snaps(&[(50, (0..4).map(|n| view(n, 2, 3)).collect())]);
    let r = epochs::check(&data(&heal_at(10_000), &s, logs));
    assert_eq!(r.valid, Valid::True, "{r:?}");
    assert_eq!(r.promotions, 1);
    assert_eq!(r.votes, 2);
}

#[test]
fn double_vote_minority_promotion_and_epoch_regression_are_caught() {
    let logs = vec![
        (
            3,
            vec![
                json!({"t": 100, "event": "failover_started", "epoch": 7}),
                json!({"t": 200, "event": "failover_won"}),
            ],
        ),
        (
            0,
            vec![
                json!({"t": 150, "event": "vote_granted", "to": id(3), "epoch": 7}),
                json!({"t": 160, "event": "vote_granted", "to": id(2), "epoch": 7}),
            ],
        ),
        (
            1,
            vec![
                json!({"t": 150, "event": "current_epoch_changed", "from": 7, "to": 5, "reason": "header"}),
            ],
        ),
    ];
    let s = snaps(&[(50, (0..4).map(|n| view(n, 2, 3)).collect())]);
    let r = epochs::check(&data(&heal_at(10_000), &s, logs));
    assert_eq!(r.valid, Valid::False);
    let effects: Vec<&str> = r
        .violations
        .iter()
        .filter_map(|v| v["effect"].as_str())
        .collect();
    assert!(
        effects
            .iter()
            .any(|e| e.contains("n0 granted two votes in epoch 7")),
        "{effects:?}"
    );
    assert!(
        effects.iter().any(|e| e.contains("promoted with 1 of 2")),
        "{effects:?}"
    );
    assert!(
        effects
            .iter()
            .any(|e| e.contains("currentEpoch went down on n1")),
        "{effects:?}"
    );
}

#[test]
fn same_slot_same_epoch_two_owners_is_caught() {
    let mut v = (0..4).map(|n| view(n, 2, 3)).collect::<Vec<_>>();
    v[1] = view(1, 3, 3);
    let r = epochs::check(&data(&heal_at(10_000), &snaps(&[(50, v)]), vec![]));
    assert_eq!(r.valid, Valid::False);
    assert!(r.violations[0]["effect"]
        .as_str()
        .unwrap()
        .contains("configEpoch 3"));
}

#[test]
fn latency_follows_a_killed_node() {
    let h = history(&[
        json!({"index": 0, "time": 1_000_000_000u64, "process": "nemesis", "type": "info", "f": "start-kill", "value": {}}),
        json!({"index": 1, "time": 1_100_000_000u64, "process": "nemesis", "type": "info", "f": "start-kill", "value": {"targets": ["n2"], "verified": true}}),
        json!({"index": 2, "time": 9_000_000_000u64, "process": "nemesis", "type": "info", "f": "stop-kill", "value": {}}),
    ]);
    let logs = vec![
        (
            0,
            vec![
                json!({"t": 2000, "event": "pfail_set", "node": id(2)}),
                json!({"t": 2500, "event": "fail_marked", "about": id(2)}),
            ],
        ),
        (
            1,
            vec![
                json!({"t": 2100, "event": "pfail_set", "node": id(2)}),
                json!({"t": 2510, "event": "fail_received", "from": id(0), "about": id(2)}),
            ],
        ),
        (
            3,
            vec![
                json!({"t": 2600, "event": "fail_received", "from": id(0), "about": id(2)}),
                json!({"t": 20000, "event": "fail_marked", "about": id(1)}),
            ],
        ),
    ];
    let s = snaps(&[(50, (0..4).map(|n| view(n, 2, 3)).collect())]);
    let m = latency::measure(&data(&h, &s, logs));
    assert_eq!(m.detections.len(), 1, "{m:?}");
    let det = &m.detections[0];
    assert_eq!(
        (
            det.first_pfail_ms,
            det.fail_decided_ms,
            det.fail_known_by_all_ms
        ),
        (Some(1000), Some(1500), Some(1600))
    );
    assert_eq!(m.false_fails.len(), 1);
    assert_eq!(m.false_fails[0]["about"], "n1");
}

/// A restarted node may come back with the currentEpoch it last saved (a bump learnt
/// from a header is saved lazily, by redis too), but never below an epoch it voted in.
#[test]
fn epoch_fallback_across_restart_is_judged_against_what_the_node_acted_on() {
    let run = |vote_epoch: u64| {
        let logs = vec![(
            1,
            vec![
                json!({"t": 100, "event": "current_epoch_changed", "from": 3, "to": 6, "reason": "header"}),
                json!({"t": 150, "event": "vote_granted", "to": id(3), "epoch": vote_epoch}),
                json!({"t": 200, "event": "current_epoch_changed", "from": 6, "to": 7, "reason": "header"}),
                // SIGKILL, restart: nodes.conf held 6.
                json!({"t": 300, "event": "started", "id": id(1)}),
                json!({"t": 400, "event": "current_epoch_changed", "from": 6, "to": 7, "reason": "header"}),
            ],
        )];
        let s = snaps(&[(50, (0..4).map(|n| view(n, 2, 3)).collect())]);
        epochs::check(&data(&heal_at(10_000), &s, logs))
    };
    let r = run(6);
    assert!(
        !r.violations.iter().any(|v| v["node"] == "n1"),
        "lost lazy bump flagged: {r:?}"
    );
    let r = run(7);
    assert!(
        r.violations
            .iter()
            .any(|v| v["effect"].as_str().is_some_and(
                |e| e.contains("went down across a restart on n1: loaded 6, below epoch 7")
            )),
        "{r:?}"
    );
}
