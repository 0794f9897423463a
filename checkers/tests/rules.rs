//! Every new protocol rule has a history that breaks it and one that keeps it.

use hearsay_checkers::history::History;
use hearsay_checkers::run_data::RunData;
use hearsay_checkers::verdict::Rule;
use hearsay_checkers::{detection, elections, Valid};
use serde_json::{json, Value};

fn id(n: usize) -> String {
    char::from(b'a' + n as u8).to_string().repeat(40)
}

/// n1..n3 masters (n1 loses its slots to n4 from `failover_at`), n4 a replica of n1.
fn view(me: usize, promoted: bool) -> String {
    let mut s = String::new();
    for n in 1..=4usize {
        let my = if n == me { "myself," } else { "" };
        let l = match (n, promoted) {
            (1, false) => format!(
                "{} 10.0.0.1:7001@17001 {my}master - 0 0 1 connected 0-5460",
                id(1)
            ),
            (1, true) => format!(
                "{} 10.0.0.1:7001@17001 {my}slave {} 0 0 1 connected",
                id(1),
                id(4)
            ),
            (2, _) => format!(
                "{} 10.0.0.2:7002@17002 {my}master - 0 0 2 connected 5461-10922",
                id(2)
            ),
            (3, _) => format!(
                "{} 10.0.0.3:7003@17003 {my}master - 0 0 3 connected 10923-16383",
                id(3)
            ),
            (_, false) => format!(
                "{} 10.0.0.4:7004@17004 {my}slave {} 0 0 4 connected",
                id(4),
                id(1)
            ),
            (_, true) => format!(
                "{} 10.0.0.4:7004@17004 {my}master - 0 0 7 connected 0-5460",
                id(4)
            ),
        };
        s.push_str(&l);
        s.push('\n');
    }
    s
}

/// Events: (node, ms, fields).
fn run(
    events: &[(usize, i64, Value)],
    failover_at: Option<i64>,
    faults: &[(i64, &str, Value)],
) -> RunData {
    run_with_gaps(events, failover_at, faults, &[])
}

/// As `run`, with no snapshot of node n in [from, to) for each (n, from, to) of
/// `gaps` (a paused node answers no CLUSTER NODES).
fn run_with_gaps(
    events: &[(usize, i64, Value)],
    failover_at: Option<i64>,
    faults: &[(i64, &str, Value)],
    gaps: &[(usize, i64, i64)],
) -> RunData {
    let mut lines: Vec<Value> = faults
        .iter()
        .map(|(t, f, v)| json!({"time": t, "process": "nemesis", "type": "info", "f": f, "value": v}))
        .collect();
    lines.push(json!({"time": 40_000, "process": "nemesis", "type": "info", "f": "heal-all", "value": null}));
    let text: String = lines
        .into_iter()
        .enumerate()
        .map(|(i, mut l)| {
            l["index"] = json!(i);
            l["time"] = json!(l["time"].as_i64().unwrap() * 1_000_000);
            l.to_string() + "\n"
        })
        .collect();
    let h = History::parse(&text, "h").unwrap();
    let mut snaps = String::new();
    for t in (0..40_000).step_by(1000) {
        for n in 1..=4usize {
            if gaps
                .iter()
                .any(|&(g, from, to)| g == n && t >= from && t < to)
            {
                continue;
            }
            let promoted = failover_at.is_some_and(|f| t >= f);
            snaps.push_str(&(json!({"time": (t + n as i64) * 1_000_000, "node": format!("n{n}"), "nodes": view(n, promoted)}).to_string() + "\n"));
        }
    }
    let logs: Vec<(String, Option<String>)> = (1..=4)
        .map(|n| {
            let mut text =
                json!({"me": id(n), "wall_ms": 0, "mono_ms": 0, "event": "started", "id": id(n)})
                    .to_string()
                    + "\n";
            for (k, t, e) in events.iter().filter(|(k, _, _)| *k == n) {
                let mut o = json!({"me": id(*k), "wall_ms": t, "mono_ms": t});
                for (key, v) in e.as_object().unwrap() {
                    o[key] = v.clone();
                }
                text.push_str(&(o.to_string() + "\n"));
            }
            (format!("n{n}"), Some(text))
        })
        .collect();
    let test = json!({"options": {"node_timeout": 2000, "target": "hearsay", "nodes": 4}});
    let tb = json!({"mono_ms": 0, "wall_ms": 0});
    RunData::build(&test, Some(&tb), &h, &snaps, &logs)
}

fn rule<'a>(rules: &'a [Rule], name: &str) -> &'a Rule {
    rules.iter().find(|r| r.rule == name).unwrap()
}

#[test]
fn pfail_needs_more_than_node_timeout_without_reply() {
    let pfail = |now: i64| {
        json!({"event": "pfail_set", "node": id(1), "ping_sent_ms": 1000, "data_received_ms": 900,
               "now_ms": now, "node_timeout_ms": 2000})
    };
    let d = run(&[(2, 3000, pfail(3100))], None, &[]);
    let r = detection::check(&d);
    let p = rule(&r, "pfail-after-node-timeout");
    assert_eq!((p.valid, p.cases), (Valid::True, 1), "{p:?}");
    // Half the timeout (the early-pfail bug).
    let d = run(&[(2, 3000, pfail(2000))], None, &[]);
    let p = detection::check(&d).remove(0);
    assert_eq!(p.valid, Valid::False, "{p:?}");
    // A redis-style line without times is not judgeable, never false.
    let d = run(
        &[(2, 3000, json!({"event": "pfail_set", "node": id(1)}))],
        None,
        &[],
    );
    let p = detection::check(&d).remove(0);
    assert_eq!(
        (p.valid, p.cases, p.unjudged, p.status()),
        (Valid::True, 0, 1, "not judgeable")
    );
}

#[test]
fn fail_of_a_master_with_slots_is_cleared_only_after_twice_node_timeout() {
    let fail = (
        2,
        5000,
        json!({"event": "fail_marked", "about": id(1), "reporters": []}),
    );
    let clear = |t: i64| {
        (
            2,
            t,
            json!({"event": "fail_cleared", "about": id(1), "reason": "nobody_serving_slots"}),
        )
    };
    let d = run(&[fail.clone(), clear(10_000)], None, &[]);
    let c = rule(&detection::check(&d), "fail-cleared-by-the-rules").clone();
    assert_eq!((c.valid, c.cases), (Valid::True, 1), "{c:?}");
    let d = run(&[fail.clone(), clear(5500)], None, &[]);
    let c = rule(&detection::check(&d), "fail-cleared-by-the-rules").clone();
    assert_eq!(c.valid, Valid::False, "{c:?}");
    // A clear with no FAIL in the node's log, while its snapshots showed the node
    // known and not FAIL (so no unlogged FAIL from gossip could explain it).
    let d = run(&[clear(10_000)], None, &[]);
    let c = rule(&detection::check(&d), "fail-cleared-by-the-rules").clone();
    assert_eq!(c.valid, Valid::False, "{c:?}");
    // A replica's FAIL may be cleared at once.
    let fail4 = (
        2,
        5000,
        json!({"event": "fail_marked", "about": id(4), "reporters": []}),
    );
    let clear4 = (
        2,
        5500,
        json!({"event": "fail_cleared", "about": id(4), "reason": "replica_reachable"}),
    );
    let d = run(&[fail4, clear4], None, &[]);
    let c = rule(&detection::check(&d), "fail-cleared-by-the-rules").clone();
    assert_eq!((c.valid, c.cases), (Valid::True, 1), "{c:?}");
}

#[test]
fn votes_need_the_master_failed_and_spacing() {
    let fail = |t| {
        (
            2,
            t,
            json!({"event": "fail_marked", "about": id(1), "reporters": []}),
        )
    };
    let grant = |t| {
        (
            2,
            t,
            json!({"event": "vote_granted", "to": id(4), "master": id(1), "epoch": 7}),
        )
    };
    let d = run(&[fail(5000), grant(6000)], None, &[]);
    let v = rule(&elections::check(&d), "vote-conditions").clone();
    assert_eq!((v.valid, v.cases), (Valid::True, 1), "{v:?}");
    // The vote-master-up bug: a grant while the master is not FAIL in the voter's view.
    let d = run(&[grant(6000)], None, &[]);
    let v = rule(&elections::check(&d), "vote-conditions").clone();
    assert_eq!(v.valid, Valid::False, "{v:?}");
    // Two grants for replicas of one master within 2 x node_timeout.
    let d = run(&[fail(5000), grant(6000), grant(7000)], None, &[]);
    let v = rule(&elections::check(&d), "vote-conditions").clone();
    assert_eq!(v.valid, Valid::False, "{v:?}");
}

#[test]
fn a_voter_needs_slots_in_its_own_view_at_the_grant() {
    // n1 votes for a replica of n3 (FAIL in n1's view); n1's own slots go to n4 at
    // `failover_at`.
    let fail3 = (
        1,
        5000,
        json!({"event": "fail_marked", "about": id(3), "reporters": []}),
    );
    let grant = |t: i64, report: bool| {
        let mut g = json!({"event": "vote_granted", "to": id(4), "master": id(3), "epoch": 7});
        if report {
            g["master_fail"] = json!(true);
            g["voter_is_master"] = json!(true);
            g["voter_slots"] = json!(5461);
        }
        (1, t, g)
    };
    // n1 paused from 3 s to 6.5 s (no snapshots), failed over at 6 s, grants from its
    // backlog at 6.4 s as a master with slots in its own view; its next snapshot
    // shows it a replica. Both with and without its own report: no violation.
    for report in [true, false] {
        let d = run_with_gaps(
            &[fail3.clone(), grant(6400, report)],
            Some(6000),
            &[],
            &[(1, 3000, 6500)],
        );
        let v = rule(&elections::check(&d), "vote-conditions").clone();
        assert_eq!(v.valid, Valid::True, "report {report}: {v:?}");
    }
    // A voter its snapshots before the grant show as a replica breaks the rule.
    let d = run(&[fail3.clone(), grant(6400, false)], Some(3000), &[]);
    let v = rule(&elections::check(&d), "vote-conditions").clone();
    assert_eq!(v.valid, Valid::False, "{v:?}");
    // So does one that reports it had no slots.
    let mut g = grant(6400, true);
    g.2["voter_slots"] = json!(0);
    let d = run(&[fail3, g], None, &[]);
    let v = rule(&elections::check(&d), "vote-conditions").clone();
    assert_eq!(v.valid, Valid::False, "{v:?}");
}

#[test]
fn a_win_needs_a_majority_of_grants_before_it() {
    let grant = |voter, t| {
        (
            voter,
            t,
            json!({"event": "vote_granted", "to": id(4), "master": id(1), "epoch": 7}),
        )
    };
    let start = (
        4,
        5500,
        json!({"event": "election_started", "master": id(1), "epoch": 7}),
    );
    let win = (
        4,
        7000,
        json!({"event": "election_won", "master": id(1), "epoch": 7}),
    );
    let d = run(
        &[start.clone(), grant(2, 6000), grant(3, 6500), win.clone()],
        Some(8000),
        &[],
    );
    let w = rule(&elections::check(&d), "won-with-grants").clone();
    assert_eq!((w.valid, w.cases), (Valid::True, 1), "{w:?}");
    // The second grant arrives after the win (the premature-win bug).
    let d = run(
        &[start, grant(2, 6000), win, grant(3, 7900)],
        Some(8000),
        &[],
    );
    let w = rule(&elections::check(&d), "won-with-grants").clone();
    assert_eq!(w.valid, Valid::False, "{w:?}");
}

#[test]
fn a_failed_master_with_a_reachable_replica_is_replaced_in_time() {
    let kill = [
        (
            2000,
            "start-kill",
            json!({"targets": ["n1"], "verified": true}),
        ),
        (32_000, "stop-kill", json!({"verified": true})),
    ];
    let synced = [(
        4,
        500,
        json!({"event": "replication_link_up", "master": id(1)}),
    )];
    let d = run(&synced, Some(9000), &kill);
    let l = rule(&elections::check(&d), "failover-liveness").clone();
    assert_eq!((l.valid, l.cases), (Valid::True, 1), "{l:?}");
    // Never replaced (the slow-failover bug).
    let d = run(&synced, None, &kill);
    let l = rule(&elections::check(&d), "failover-liveness").clone();
    assert_eq!(l.valid, Valid::False, "{l:?}");
    // The replica's link never came up (its sync had not finished when the master
    // died): redis's validity rule keeps it from failing over, so no case.
    let d = run(&[], None, &kill);
    let l = rule(&elections::check(&d), "failover-liveness").clone();
    assert_eq!((l.valid, l.cases), (Valid::True, 0), "{l:?}");
    // Its link broke before the master died: no case either.
    let lost = [
        (
            4,
            500,
            json!({"event": "replication_link_up", "master": id(1)}),
        ),
        (
            4,
            1500,
            json!({"event": "replication_link_down", "master": id(1)}),
        ),
    ];
    let d = run(&lost, None, &kill);
    let l = rule(&elections::check(&d), "failover-liveness").clone();
    assert_eq!((l.valid, l.cases), (Valid::True, 0), "{l:?}");
    assert!(
        l.notes
            .iter()
            .any(|n| n.contains("not counted as candidate")),
        "{l:?}"
    );
    // A short fault is not a case.
    let short = [
        (
            2000,
            "start-kill",
            json!({"targets": ["n1"], "verified": true}),
        ),
        (6000, "stop-kill", json!({"verified": true})),
    ];
    let d = run(&[], None, &short);
    let l = rule(&elections::check(&d), "failover-liveness").clone();
    assert_eq!((l.cases, l.status()), (0, "no cases"));
}

#[test]
fn liveness_counts_from_when_a_replica_can_reach_a_majority() {
    // n1 paused 2-34 s; until 8 s n2 hears only n4 and n4 does not hear n2, so n4
    // reaches one master of the two it needs: the bound runs from 8 s.
    let blind = json!({"refuses-from": {"n2": ["n1", "n3"], "n4": ["n2"]}, "verified": true});
    let faults = [
        (
            2000,
            "start-pause",
            json!({"targets": ["n1"], "verified": true}),
        ),
        (2000, "start-partition", json!({"targets": blind})),
        (8000, "stop-partition", json!({"verified": true})),
        (34_000, "stop-pause", json!({"verified": true})),
    ];
    // Replaced at 24 s: 16 s after n4 could win, inside the 17 s bound.
    let synced = [(
        4,
        500,
        json!({"event": "replication_link_up", "master": id(1)}),
    )];
    let d = run(&synced, Some(24_000), &faults);
    let l = rule(&elections::check(&d), "failover-liveness").clone();
    assert_eq!((l.valid, l.cases), (Valid::True, 1), "{l:?}");
    // Replaced at 27 s: too late.
    let d = run(&synced, Some(27_000), &faults);
    let l = rule(&elections::check(&d), "failover-liveness").clone();
    assert_eq!(l.valid, Valid::False, "{l:?}");
}
