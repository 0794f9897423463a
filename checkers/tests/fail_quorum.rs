//! fail-quorum on hand-written runs: a valid decision, and each way one can break.

use hearsay_checkers::fail_quorum;
use hearsay_checkers::history::History;
use hearsay_checkers::run_data::RunData;
use hearsay_checkers::Valid;
use serde_json::json;

const BASE_MONO: i64 = 1_000_000;
const BASE_WALL: i64 = 1_700_000_000_000;

fn id(n: usize) -> String {
    char::from(b'a' + n as u8).to_string().repeat(40)
}

/// n0..n2 masters with slots, n3..n5 their replicas.
fn cluster_nodes(me: usize) -> String {
    let mut s = String::new();
    let slots = ["0-5460", "5461-10922", "10923-16383"];
    for i in 0..6 {
        let me_flag = if i == me { "myself," } else { "" };
        if i < 3 {
            s.push_str(&format!(
                "{} 127.0.0.1:{}@1 {me_flag}master - 0 0 {} connected {}\n",
                id(i),
                7000 + i,
                i + 1,
                slots.get(i).copied().unwrap_or_default()
            ));
        } else {
            s.push_str(&format!(
                "{} 127.0.0.1:{}@1 {me_flag}slave {} 0 0 {} connected\n",
                id(i),
                7000 + i,
                id(i - 3),
                i - 2
            ));
        }
    }
    s
}

fn snapshots() -> String {
    let mut out = String::new();
    for t in [1000u64, 3000, 5000, 7000] {
        for n in 0..6 {
            out.push_str(
                &json!({"time": t * 1_000_000, "node": format!("n{n}"), "nodes": cluster_nodes(n)})
                    .to_string(),
            );
            out.push('\n');
        }
    }
    out
}

/// A hearsay event line at run time `t` ms.
fn ev(node: usize, t: i64, v: serde_json::Value) -> String {
    let mut o = json!({"node": id(node), "wall_ms": BASE_WALL + t, "mono_ms": BASE_MONO + t});
    if let (Some(o), Some(v)) = (o.as_object_mut(), v.as_object()) {
        for (k, x) in v {
            o.insert(k.clone(), x.clone());
        }
    }
    o.to_string()
}

fn run(logs: Vec<(usize, Vec<String>)>, all_nodes: bool) -> RunData {
    let test = json!({"options": {"node_timeout": 1000, "target": "hearsay"}});
    let tb = json!({"mono_ms": BASE_MONO, "wall_ms": BASE_WALL});
    let mut node_logs: Vec<(String, Option<String>)> = Vec::new();
    for n in 0..6 {
        let lines = logs
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, l)| l.join("\n") + "\n");
        if lines.is_some() || all_nodes {
            let started = ev(n, 0, json!({"event": "started", "id": id(n)}));
            node_logs.push((
                format!("n{n}"),
                Some(format!("{started}\n{}", lines.unwrap_or_default())),
            ));
        }
    }
    let h = History::parse("", "h").unwrap();
    RunData::build(&test, Some(&tb), &h, &snapshots(), &node_logs)
}

fn fail_marked(node: usize, t: i64, about: usize, reporters: &[(usize, i64)]) -> String {
    let reps: Vec<_> = reporters
        .iter()
        .map(|(r, rt)| json!({"id": id(*r), "time_ms": BASE_WALL + rt}))
        .collect();
    ev(
        node,
        t,
        json!({"event": "fail_marked", "about": id(about), "reporters": reps,
        "quorum_needed": 2, "masters_with_slots": 3, "counted_self": true}),
    )
}

fn report(node: usize, t: i64, reporter: usize, about: usize) -> String {
    ev(
        node,
        t,
        json!({"event": "failure_report_added", "reporter": id(reporter), "about": id(about)}),
    )
}

fn pfail(node: usize, t: i64, about: usize) -> String {
    ev(node, t, json!({"event": "pfail_set", "node": id(about)}))
}

fn received(node: usize, t: i64, from: usize, about: usize) -> String {
    ev(
        node,
        t,
        json!({"event": "fail_received", "from": id(from), "about": id(about)}),
    )
}

fn valid_logs() -> Vec<(usize, Vec<String>)> {
    vec![
        (
            0,
            vec![
                pfail(0, 4000, 2),
                report(0, 4500, 1, 2),
                fail_marked(0, 5000, 2, &[(1, 4500)]),
            ],
        ),
        (1, vec![pfail(1, 4100, 2)]),
        (3, vec![received(3, 5010, 0, 2)]),
    ]
}

#[test]
fn quorum_backed_fail_is_valid() {
    let r = fail_quorum::check(&run(valid_logs(), true));
    assert_eq!(r.valid, Valid::True, "{r:?}");
    assert_eq!(r.decisions, 1);
    assert_eq!(r.received, 1);
    assert_eq!(r.evidence[0]["reports_counted"], json!(["n1"]));
    assert_eq!(r.evidence[0]["quorum_needed"], 2);
}

#[test]
fn fail_on_own_pfail_is_caught() {
    let logs = vec![(0, vec![pfail(0, 4000, 2), fail_marked(0, 5000, 2, &[])])];
    let r = fail_quorum::check(&run(logs, true));
    assert_eq!(r.valid, Valid::False, "{r:?}");
    let v = &r.violations[0];
    assert_eq!(v["decider"], "n0");
    assert_eq!(v["about"], "n2");
    assert!(v["effect"].as_str().unwrap().contains("1 of 2"), "{v}");
}

#[test]
fn replica_report_does_not_count() {
    let logs = vec![
        (
            0,
            vec![
                pfail(0, 4000, 2),
                report(0, 4500, 4, 2),
                fail_marked(0, 5000, 2, &[(4, 4500)]),
            ],
        ),
        (4, vec![pfail(4, 4100, 2)]),
    ];
    let r = fail_quorum::check(&run(logs, true));
    assert_eq!(r.valid, Valid::False, "{r:?}");
    assert_eq!(
        r.violations[0]["reports_rejected"][0]["why"],
        "not a master"
    );
    assert_eq!(r.violations[0]["reports_rejected"][0]["reporter"], "n4");
}

#[test]
fn stale_report_does_not_count() {
    // node_timeout 1000: a report last seen 3 s before the decision has expired.
    let logs = vec![
        (
            0,
            vec![
                report(0, 1500, 1, 2),
                pfail(0, 4000, 2),
                fail_marked(0, 4500, 2, &[(1, 1500)]),
            ],
        ),
        (1, vec![pfail(1, 1400, 2)]),
    ];
    let r = fail_quorum::check(&run(logs, true));
    assert_eq!(r.valid, Valid::False, "{r:?}");
    assert_eq!(
        r.violations[0]["reports_rejected"][0]["why"],
        "older than 2 x node_timeout"
    );
}

#[test]
fn refreshed_report_stays_young() {
    let logs = vec![
        (
            0,
            vec![
                report(0, 1500, 1, 2),
                ev(
                    0,
                    3000,
                    json!({"event": "failure_report_refreshed", "reporter": id(1), "about": id(2)}),
                ),
                pfail(0, 4000, 2),
                fail_marked(0, 4500, 2, &[(1, 3000)]),
            ],
        ),
        (1, vec![pfail(1, 1400, 2)]),
    ];
    assert_eq!(fail_quorum::check(&run(logs, true)).valid, Valid::True);
}

#[test]
fn removed_report_does_not_count() {
    let logs = vec![
        (
            0,
            vec![
                report(0, 4000, 1, 2),
                ev(
                    0,
                    4200,
                    json!({"event": "failure_report_removed", "reporter": id(1), "about": id(2), "reason": "back_online"}),
                ),
                fail_marked(0, 4500, 2, &[]),
            ],
        ),
        (1, vec![pfail(1, 3900, 2)]),
    ];
    assert_eq!(fail_quorum::check(&run(logs, true)).valid, Valid::False);
}

#[test]
fn report_the_reporter_never_held_does_not_count() {
    let logs = vec![
        (
            0,
            vec![
                pfail(0, 4000, 2),
                report(0, 4500, 1, 2),
                fail_marked(0, 5000, 2, &[(1, 4500)]),
            ],
        ),
        (1, vec![]),
    ];
    let r = fail_quorum::check(&run(logs, true));
    assert_eq!(r.valid, Valid::False, "{r:?}");
    assert_eq!(
        r.violations[0]["reports_rejected"][0]["why"],
        "reporter never held PFAIL/FAIL then"
    );
}

#[test]
fn reporter_without_log_is_unknown_not_false() {
    let logs = vec![(
        0,
        vec![
            pfail(0, 4000, 2),
            report(0, 4500, 1, 2),
            fail_marked(0, 5000, 2, &[(1, 4500)]),
        ],
    )];
    let r = fail_quorum::check(&run(logs, false));
    assert_eq!(
        r.valid,
        Valid::True,
        "a lenient count still reaches quorum: {r:?}"
    );
    assert!(!r.evidence[0]["unsure"].as_array().unwrap().is_empty());
}

#[test]
fn fail_received_from_a_node_that_never_decided_is_caught() {
    let mut logs = valid_logs();
    logs.push((4, vec![received(4, 5020, 1, 2)]));
    let r = fail_quorum::check(&run(logs, true));
    assert_eq!(r.valid, Valid::False, "{r:?}");
    assert_eq!(r.untraced[0]["from"], "n1");
    assert_eq!(r.untraced[0]["receiver"], "n4");
}

#[test]
fn redis_log_decision_is_judged_from_log_lines() {
    // Same scenario through the redis adapter: second-resolution-free ms stamps.
    let log0 = "\
1:M 14 Nov 2023 22:13:20.000 * Node configuration loaded, I'm aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
1:M 14 Nov 2023 22:13:24.000 . *** NODE cccccccccccccccccccccccccccccccccccccccc possibly failing
1:M 14 Nov 2023 22:13:24.500 - Node bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb reported node cccccccccccccccccccccccccccccccccccccccc as not reachable.
1:M 14 Nov 2023 22:13:25.000 * Marking node cccccccccccccccccccccccccccccccccccccccc as failing (quorum reached).
1:M 14 Nov 2023 22:13:30.000 # Redis is now ready to exit, bye bye...
";
    let log1 = "\
2:M 14 Nov 2023 22:13:20.000 * Node configuration loaded, I'm bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
2:M 14 Nov 2023 22:13:24.100 . *** NODE cccccccccccccccccccccccccccccccccccccccc possibly failing
2:M 14 Nov 2023 22:13:30.000 # Redis is now ready to exit, bye bye...
";
    // 2023-11-14T22:13:20Z = 1_700_000_000_000 ms: run time 4000 = 22:13:24.000.
    let to_lines = |log: &str| {
        hearsay_checkers::redis_log::events(log.as_bytes())
            .iter()
            .map(|e| e.to_string() + "\n")
            .collect::<String>()
    };
    let test = json!({"options": {"node_timeout": 1000, "target": "redis", "loglevel": "debug"}});
    let tb = json!({"mono_ms": BASE_MONO, "wall_ms": BASE_WALL});
    let h = History::parse("", "h").unwrap();
    let logs = vec![
        ("n0".to_string(), Some(to_lines(log0))),
        ("n1".to_string(), Some(to_lines(log1))),
    ];
    let d = RunData::build(&test, Some(&tb), &h, &snapshots(), &logs);
    let r = fail_quorum::check(&d);
    assert_eq!(r.valid, Valid::True, "{r:?}");
    assert_eq!(r.evidence[0]["t_ms"], 5000);
    // Without the report line the same decision has no quorum.
    let log0_bad: String = log0
        .lines()
        .filter(|l| !l.contains("reported"))
        .map(|l| format!("{l}\n"))
        .collect();
    let logs = vec![
        ("n0".to_string(), Some(to_lines(&log0_bad))),
        ("n1".to_string(), Some(to_lines(log1))),
    ];
    let r = fail_quorum::check(&RunData::build(&test, Some(&tb), &h, &snapshots(), &logs));
    assert_eq!(r.valid, Valid::False, "{r:?}");
}
