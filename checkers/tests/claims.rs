//! The claims model: each mechanism explains the loss it documents, with evidence, and
//! only that; each history here breaks or keeps a claim on purpose.

use hearsay_checkers::claims::{self, Facts, Model};
use hearsay_checkers::history::History;
use hearsay_checkers::run_data::RunData;
use hearsay_checkers::set::{check, SetOptions};
use hearsay_checkers::Valid;
use serde_json::{json, Value};

const NT: i64 = 2000;

fn id(n: usize) -> String {
    char::from(b'a' + n as u8).to_string().repeat(40)
}

/// A key whose slot is in n1's range (0-5460).
fn key() -> String {
    (0..)
        .map(|i| format!("set{{{i}}}"))
        .find(|k| hearsay_node::slots::key_slot(k.as_bytes()) < 5461)
        .unwrap()
}

/// CLUSTER NODES as `me` sees it: n1..n3 masters, n4..n6 their replicas; after a
/// failover (`promoted`) n4 holds n1's slots and n1 is its replica.
fn view(me: usize, promoted: bool) -> String {
    let ranges = ["0-5460", "5461-10922", "10923-16383"];
    let mut s = String::new();
    for n in 1..=6usize {
        let myself = if n == me { "myself," } else { "" };
        let line = match (n, promoted) {
            (1, true) => format!(
                "{} 10.0.0.1:7001@17001 {myself}slave {} 0 0 4 connected",
                id(1),
                id(4)
            ),
            (4, true) => format!(
                "{} 10.0.0.4:7004@17004 {myself}master - 0 0 7 connected 0-5460",
                id(4)
            ),
            (1..=3, _) => format!(
                "{} 10.0.0.{n}:700{n}@1700{n} {myself}master - 0 0 {n} connected {}",
                id(n),
                ranges[n - 1]
            ),
            _ => format!(
                "{} 10.0.0.{n}:700{n}@1700{n} {myself}slave {} 0 0 {n} connected",
                id(n),
                id(n - 3)
            ),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

struct Run {
    ops: Vec<Value>,
    faults: Vec<(i64, &'static str, Value)>,
    failover_at: Option<i64>,
    election_offset: u64,
    master_offset_after_ack: u64,
}

impl Run {
    fn new() -> Run {
        Run {
            ops: vec![],
            faults: vec![],
            failover_at: None,
            election_offset: 100,
            master_offset_after_ack: 150,
        }
    }

    /// An add of `el` acked by `node` at `t_ms`.
    fn add(&mut self, t_ms: i64, el: i64, node: &str) -> &mut Self {
        let v = json!({"key": key(), "element": el});
        self.ops.push(
            json!({"time": t_ms - 5, "process": el, "type": "invoke", "f": "add", "value": v}),
        );
        self.ops.push(json!({"time": t_ms, "process": el, "type": "ok", "f": "add", "value": v, "node": node}));
        self
    }

    fn build(&self) -> (History, RunData) {
        let mut lines: Vec<Value> = self.ops.clone();
        // The final read sees only element 1 (the control write).
        let v = json!({"key": key()});
        lines.push(
            json!({"time": 29_000, "process": 99, "type": "invoke", "f": "final-read", "value": v}),
        );
        lines.push(json!({"time": 29_001, "process": 99, "type": "ok", "f": "final-read", "value": {"key": key(), "elements": [1]}, "node": "n4"}));
        for (t, f, v) in &self.faults {
            lines
                .push(json!({"time": t, "process": "nemesis", "type": "info", "f": f, "value": v}));
        }
        lines.push(json!({"time": 28_000, "process": "nemesis", "type": "info", "f": "heal-all", "value": null}));
        lines.push(json!({"time": 28_500, "process": "nemesis", "type": "info", "f": "recovered", "value": {"converged": true}}));
        lines.sort_by_key(|l| l["time"].as_i64().unwrap());
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
        for t in (0..30_000).step_by(1000) {
            let promoted = self.failover_at.is_some_and(|f| t >= f);
            for n in 1..=6usize {
                let role = if (n == 4 && promoted) || (n <= 3 && !(n == 1 && promoted)) {
                    "master"
                } else {
                    "slave"
                };
                let offset = if n == 1 && t >= 5000 {
                    self.master_offset_after_ack
                } else {
                    90
                };
                snaps.push_str(&(json!({"time": (t + n as i64) * 1_000_000, "node": format!("n{n}"),
                    "nodes": view(n, promoted),
                    "replication": {"role": role, "offset": offset, "replid": "r1", "time": (t + n as i64) * 1_000_000}})
                    .to_string() + "\n"));
            }
        }
        let mut logs = Vec::new();
        for n in 1..=6usize {
            let mut text = json!({"me": id(n), "wall_ms": 1000, "mono_ms": 1000, "event": "started", "id": id(n)}).to_string() + "\n";
            if n == 4 {
                if let Some(f) = self.failover_at {
                    let t = f - 500;
                    text += &(json!({"me": id(4), "wall_ms": 1000 + t - 300, "mono_ms": 1000 + t - 300, "event": "election_scheduled", "master": id(1), "offset": self.election_offset}).to_string() + "\n");
                    text += &(json!({"me": id(4), "wall_ms": 1000 + t, "mono_ms": 1000 + t, "event": "election_won", "master": id(1), "epoch": 7}).to_string() + "\n");
                }
            }
            logs.push((format!("n{n}"), Some(text)));
        }
        let test = json!({"options": {"node_timeout": NT, "target": "hearsay", "nodes": 6}});
        let tb = json!({"mono_ms": 1000, "wall_ms": 1000});
        let d = RunData::build(&test, Some(&tb), &h, &snaps, &logs);
        (h, d)
    }

    fn judge(&self) -> claims::ClaimsResult {
        let (h, d) = self.build();
        let r = check(&h, SetOptions::default());
        let f = Facts::new(&d, &h, true);
        claims::judge(
            Model::RedisCluster,
            "hearsay",
            claims::set_anomalies(&r),
            &f,
        )
    }
}

fn kill_n1(r: &mut Run, from: i64, to: i64) {
    r.faults.push((
        from,
        "start-kill",
        json!({"targets": ["n1"], "verified": true}),
    ));
    r.faults.push((to, "stop-kill", json!({"verified": true})));
}

fn isolate_n1(r: &mut Run, from: i64, to: i64) {
    let g = json!({"refuses-from": {"n1": ["n2", "n3", "n4", "n5", "n6"], "n2": ["n1"], "n3": ["n1"], "n4": ["n1"], "n5": ["n1"], "n6": ["n1"]}});
    r.faults.push((
        from,
        "start-partition",
        json!({"targets": g, "verified": true}),
    ));
    r.faults
        .push((to, "stop-partition", json!({"verified": true})));
}

#[test]
fn a_write_lost_by_a_failover_to_a_replica_without_it_is_explained() {
    let mut r = Run::new();
    r.add(1000, 1, "n1").add(5000, 2, "n1");
    kill_n1(&mut r, 6000, 20_000);
    r.failover_at = Some(10_000);
    let c = r.judge();
    assert_eq!((c.anomalies, c.explained), (1, 1), "{c:#?}");
    assert_eq!(c.redis_cluster, Valid::True);
    assert_eq!(c.linearizable, Valid::False);
    assert_eq!(c.by_mechanism["async-replication"], 1);
    let ev = &c.explained_examples[0].evidence[0];
    assert_eq!(ev["acked_by"], "n1");
    assert_eq!(ev["failover"]["slot_moved_to"], "n4");
    assert!(
        c.summary.starts_with("valid under redis-cluster claims"),
        "{}",
        c.summary
    );
}

#[test]
fn a_loss_the_promoted_replica_had_replicated_is_unexplained() {
    let mut r = Run::new();
    r.add(1000, 1, "n1").add(5000, 2, "n1");
    kill_n1(&mut r, 6000, 20_000);
    r.failover_at = Some(10_000);
    r.election_offset = 200; // past the master's 150 sampled after the ack
    let c = r.judge();
    assert_eq!(c.unexplained, 1, "{c:#?}");
    assert_eq!(c.redis_cluster, Valid::False);
    assert!(c.unexplained_examples[0].evidence[0]["why"]
        .as_str()
        .unwrap()
        .contains("had the write"));
}

#[test]
fn a_loss_without_any_failover_is_unexplained() {
    let mut r = Run::new();
    r.add(1000, 1, "n1").add(5000, 2, "n1");
    let c = r.judge();
    assert_eq!((c.anomalies, c.unexplained), (1, 1), "{c:#?}");
    assert!(c.summary.starts_with("INVALID"), "{}", c.summary);
}

#[test]
fn a_minority_master_write_within_node_timeout_is_explained_after_it_is_not() {
    let mut r = Run::new();
    isolate_n1(&mut r, 3000, 15_000);
    r.add(1000, 1, "n1").add(4000, 2, "n1");
    r.failover_at = Some(9000);
    let c = r.judge();
    assert_eq!(c.explained, 1, "{c:#?}");
    assert_eq!(c.by_mechanism["minority-master"], 1);
    // The same loss acknowledged 9 s into the cut: a minority master must have stopped.
    let mut r = Run::new();
    isolate_n1(&mut r, 3000, 15_000);
    r.add(1000, 1, "n1").add(12_000, 2, "n1");
    r.failover_at = Some(9000);
    let c = r.judge();
    assert_eq!(c.unexplained, 1, "{c:#?}");
    let why = c.unexplained_examples[0].evidence[0]["why"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("after it was cut off"), "{why}");
}

#[test]
fn a_paused_master_serving_its_queued_writes_on_resume_is_a_minority_master() {
    // n1 paused 3 s..8 s: on SIGCONT it serves what queued before its first cron
    // can see the minority; node_timeout counts its running time only.
    let mut r = Run::new();
    r.faults.push((
        3000,
        "start-pause",
        json!({"targets": ["n1"], "verified": true}),
    ));
    r.faults
        .push((8000, "stop-pause", json!({"verified": true})));
    r.add(1000, 1, "n1").add(8000, 2, "n1");
    r.failover_at = Some(7000);
    let c = r.judge();
    assert_eq!(c.unexplained, 0, "{c:#?}");
    assert_eq!(c.by_mechanism["minority-master"], 1);
    // Running for longer than node_timeout after the resume: not explained.
    let mut r = Run::new();
    r.faults.push((
        3000,
        "start-pause",
        json!({"targets": ["n1"], "verified": true}),
    ));
    r.faults
        .push((8000, "stop-pause", json!({"verified": true})));
    isolate_n1(&mut r, 8000, 20_000);
    r.add(1000, 1, "n1").add(14_000, 2, "n1");
    r.failover_at = Some(7000);
    let c = r.judge();
    assert_eq!(c.unexplained, 1, "{c:#?}");
}

#[test]
fn linearizable_claims_count_every_anomaly() {
    let mut r = Run::new();
    r.add(1000, 1, "n1").add(5000, 2, "n1");
    kill_n1(&mut r, 6000, 20_000);
    r.failover_at = Some(10_000);
    let (h, d) = r.build();
    let res = check(&h, SetOptions::default());
    let f = Facts::new(&d, &h, true);
    let c = claims::judge(
        Model::Linearizable,
        "hearsay",
        claims::set_anomalies(&res),
        &f,
    );
    assert_eq!(c.valid, Valid::False);
    assert_eq!(c.redis_cluster, Valid::True);
    assert!(c.linearizable_contrast["text"]
        .as_str()
        .unwrap()
        .contains("ruled out all 1"));
}

#[test]
fn a_target_without_a_claims_table_explains_nothing() {
    let mut r = Run::new();
    r.add(1000, 1, "n1").add(5000, 2, "n1");
    kill_n1(&mut r, 6000, 20_000);
    r.failover_at = Some(10_000);
    let (h, d) = r.build();
    let res = check(&h, SetOptions::default());
    let f = Facts::new(&d, &h, true);
    let c = claims::judge(
        Model::RedisCluster,
        "unknown-system",
        claims::set_anomalies(&res),
        &f,
    );
    assert_eq!(c.unexplained, 1);
}
