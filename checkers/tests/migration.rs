//! Slot moves: histories that break `single-writer`, a final state with an open slot
//! or split membership (convergence), and a loss in a moved slot that the claims must
//! not attribute to the move.

use hearsay_checkers::claims::{self, Facts, Model};
use hearsay_checkers::history::History;
use hearsay_checkers::run_data::RunData;
use hearsay_checkers::set::{check, SetOptions};
use hearsay_checkers::{convergence, migration, Valid};
use serde_json::{json, Value};

const KEY: &str = "set{7}";

fn slot() -> u16 {
    hearsay_node::slots::key_slot(KEY.as_bytes())
}

fn id(n: usize) -> String {
    char::from(b'a' + n as u8).to_string().repeat(40)
}

/// n1 and n2 masters; n1 holds the key's slot until `moved_at`, then n2. `open` puts
/// a migrating marker on n1's own line; `stranger` lets n2 know a third node.
fn view(me: usize, moved: bool, open: bool, stranger: bool) -> String {
    let s = slot();
    let my = |n: usize| if n == me { "myself," } else { "" };
    let (n1_slots, n2_slots) = if moved {
        (format!("0-{}", s - 1), format!("{s}-16383"))
    } else {
        (format!("0-{s}"), format!("{}-16383", s + 1))
    };
    let mut n1 = format!(
        "{} 10.0.0.1:7001@17001 {}master - 0 0 1 connected {n1_slots}",
        id(1),
        my(1)
    );
    if open && me == 1 {
        n1.push_str(&format!(" [{s}->-{}]", id(2)));
    }
    let mut out = format!(
        "{n1}\n{} 10.0.0.2:7002@17002 {}master - 0 0 2 connected {n2_slots}\n",
        id(2),
        my(2)
    );
    if stranger && me == 2 {
        out.push_str(&format!(
            "{} 10.0.0.3:7003@17003 master - 0 0 0 connected\n",
            id(3)
        ));
    }
    out
}

struct Run {
    ops: Vec<Value>,
    moved_at: Option<i64>,
    open_at_end: bool,
    stranger: bool,
    reshard: bool,
}

impl Run {
    fn new() -> Run {
        Run {
            ops: vec![],
            moved_at: Some(5000),
            open_at_end: false,
            stranger: false,
            reshard: true,
        }
    }

    /// A client add of `element` invoked at `inv`, acked by `node` at `ack`.
    fn add(&mut self, process: u64, element: u64, inv: i64, ack: i64, node: &str) {
        self.ops.push(json!({"time": inv, "process": process, "type": "invoke", "f": "add", "value": {"key": KEY, "element": element}}));
        self.ops.push(json!({"time": ack, "process": process, "type": "ok", "f": "add", "value": {"key": KEY, "element": element}, "node": node}));
    }

    fn build(&self) -> (History, RunData) {
        let mut ops = self.ops.clone();
        if self.reshard {
            let ev = json!({"from": "n1", "to": "n2", "opened": [{"slot": slot(), "ms": 1000}],
                            "closed": [{"slot": slot(), "ms": 5000}], "moved": {slot().to_string(): [KEY]}});
            ops.push(json!({"time": 900, "process": "nemesis", "type": "info", "f": "start-reshard", "value": {"planned": {}}}));
            ops.push(json!({"time": 5001, "process": "nemesis", "type": "info", "f": "start-reshard", "value": {"targets": ["n1", "n2"], "evidence": ev, "verified": true}}));
        }
        ops.push(json!({"time": 20_000, "process": "nemesis", "type": "info", "f": "heal-all", "value": null}));
        ops.push(json!({"time": 20_500, "process": 9, "type": "invoke", "f": "read", "value": {"key": KEY}}));
        ops.push(json!({"time": 20_600, "process": 9, "type": "ok", "f": "read", "value": {"key": KEY, "elements": []}, "node": "n2"}));
        ops.sort_by_key(|o| o["time"].as_i64().unwrap_or(0));
        let text: String = ops
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
        for t in (0..22_000).step_by(1000) {
            for n in 1..=2usize {
                let moved = self.moved_at.is_some_and(|m| t >= m);
                let end = t >= 20_000;
                let v = view(n, moved, end && self.open_at_end, end && self.stranger);
                snaps.push_str(&(json!({"time": (t + n as i64) * 1_000_000, "node": format!("n{n}"), "nodes": v}).to_string() + "\n"));
            }
        }
        let logs: Vec<(String, Option<String>)> = (1..=2)
            .map(|n| {
                let text = json!({"me": id(n), "wall_ms": 0, "mono_ms": 0, "event": "started", "id": id(n), "seq": 0}).to_string()
                    + "\n"
                    + &json!({"me": id(n), "wall_ms": 30_000, "mono_ms": 30_000, "event": "stopped", "seq": 1}).to_string()
                    + "\n";
                (format!("n{n}"), Some(text))
            })
            .collect();
        let test = json!({"options": {"node_timeout": 2000, "target": "hearsay", "nodes": 2}});
        let tb = json!({"mono_ms": 0, "wall_ms": 0});
        let d = RunData::build(&test, Some(&tb), &h, &snaps, &logs);
        (h, d)
    }
}

#[test]
fn the_source_acking_after_the_target_breaks_single_writer() {
    let mut r = Run::new();
    r.add(1, 1, 1500, 1600, "n1");
    r.add(2, 2, 2000, 2100, "n2");
    r.add(3, 3, 2500, 2600, "n1");
    let (_, d) = r.build();
    assert_eq!(d.moves.len(), 1);
    let rule = migration::single_writer(&d);
    assert_eq!(rule.valid, Valid::False, "{rule:?}");
    assert_eq!(rule.violations.len(), 1);
    assert_eq!(rule.violations[0]["source_ack"]["acked_ms"], 2600);

    // Source first, then the target only: one writer at a time.
    let mut r = Run::new();
    r.add(1, 1, 1500, 1600, "n1");
    r.add(2, 2, 2000, 2100, "n2");
    r.add(3, 3, 2500, 2600, "n2");
    let rule = migration::single_writer(&r.build().1);
    assert_eq!((rule.valid, rule.cases), (Valid::True, 1));

    // A kill of the source in the window: not judged.
    let mut r = Run::new();
    r.add(1, 1, 1500, 1600, "n1");
    r.add(2, 2, 2000, 2100, "n2");
    r.add(3, 3, 2500, 2600, "n1");
    r.ops.push(json!({"time": 1700, "process": "nemesis", "type": "info", "f": "start-kill", "value": {"targets": ["n1"], "verified": true}}));
    r.ops.push(json!({"time": 1800, "process": "nemesis", "type": "info", "f": "stop-kill", "value": {"verified": true}}));
    let rule = migration::single_writer(&r.build().1);
    assert_eq!((rule.valid, rule.cases, rule.unjudged), (Valid::True, 0, 1));

    // No reshard: the rule says it had no case.
    let mut r = Run::new();
    r.reshard = false;
    let rule = migration::single_writer(&r.build().1);
    assert_eq!((rule.valid, rule.cases), (Valid::True, 0));
    assert!(rule.notes[0].contains("no slot moved"));
}

#[test]
fn a_slot_left_open_or_split_members_after_the_heal_break_convergence() {
    let r = Run::new();
    assert_eq!(convergence::check(&r.build().1, None).valid, Valid::True);
    let mut r = Run::new();
    r.open_at_end = true;
    let c = convergence::check(&r.build().1, None);
    assert_eq!(c.valid, Valid::False);
    assert!(
        c.problems
            .iter()
            .any(|p| p.contains("left migrating on n1")),
        "{c:?}"
    );
    let mut r = Run::new();
    r.stranger = true;
    let c = convergence::check(&r.build().1, None);
    assert_eq!(c.valid, Valid::False);
    assert!(
        c.problems.iter().any(|p| p.contains("members differ")),
        "{c:?}"
    );
}

#[test]
fn a_migration_explains_no_loss() {
    // Acked by n1 before the move, absent from the final read: the slot moved to n2
    // afterwards, by a reshard. Without the reshard the same ownership change reads
    // as a failover (async replication explains it); with it, nothing does.
    let judge = |r: &Run| {
        let (h, d) = r.build();
        let res = check(&h, SetOptions::default());
        let f = Facts::new(&d, &h, true);
        claims::judge(
            Model::RedisCluster,
            "hearsay",
            claims::set_anomalies(&res),
            &f,
        )
    };
    let mut r = Run::new();
    r.add(1, 1, 1500, 1600, "n1");
    let c = judge(&r);
    assert_eq!((c.anomalies, c.unexplained), (1, 1), "{c:?}");
    assert_eq!(c.valid, Valid::False);
    assert!(c.by_mechanism.is_empty(), "{:?}", c.by_mechanism);
    let mut r = Run::new();
    r.reshard = false;
    r.add(1, 1, 1500, 1600, "n1");
    let c = judge(&r);
    assert_eq!((c.anomalies, c.explained), (1, 1), "{c:?}");
}
