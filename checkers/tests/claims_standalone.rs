//! Sentinel's and twemproxy's claims: each documented mechanism explains the loss it
//! documents, with evidence, and only that.

use hearsay_checkers::claims::{self, Facts, Model};
use hearsay_checkers::history::History;
use hearsay_checkers::run_data::RunData;
use hearsay_checkers::set::{check, SetOptions};
use serde_json::{json, Value};

const KEY: &str = "set{0}";

/// n1..n3 data nodes (n1 master until `switch_at`, then n3), n4..n6 sentinels.
struct Run {
    ops: Vec<Value>,
    faults: Vec<(i64, &'static str, Value)>,
    switch_at: Option<i64>,
    /// twemproxy: (from, to, shard) where the key lived.
    shard_of_key: Vec<(i64, i64, &'static str)>,
    /// n3's offset before the switch (n1's is 150 after the ack).
    promoted_offset: u64,
}

impl Run {
    fn new() -> Run {
        Run {
            ops: vec![],
            faults: vec![],
            switch_at: None,
            shard_of_key: vec![],
            promoted_offset: 100,
        }
    }

    fn add(&mut self, t_ms: i64, el: i64, node: &str) -> &mut Self {
        let v = json!({"key": KEY, "element": el});
        self.ops.push(
            json!({"time": t_ms - 5, "process": el, "type": "invoke", "f": "add", "value": v}),
        );
        self.ops.push(json!({"time": t_ms, "process": el, "type": "ok", "f": "add", "value": v, "node": node}));
        self
    }

    fn fault(&mut self, from: i64, to: i64, kind: &'static str, targets: Value) -> &mut Self {
        let start: &'static str = match kind {
            "partition" => "start-partition",
            "kill" => "start-kill",
            _ => "start-pause",
        };
        let stop: &'static str = match kind {
            "partition" => "stop-partition",
            "kill" => "stop-kill",
            _ => "stop-pause",
        };
        self.faults
            .push((from, start, json!({"targets": targets, "verified": true})));
        self.faults.push((to, stop, json!({"verified": true})));
        self
    }

    fn history(&self) -> History {
        let mut lines: Vec<Value> = self.ops.clone();
        lines.push(json!({"time": 29_000, "process": 99, "type": "invoke", "f": "final-read", "value": {"key": KEY}}));
        lines.push(json!({"time": 29_001, "process": 99, "type": "ok", "f": "final-read", "value": {"key": KEY, "elements": [1]}, "node": "n3"}));
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
        History::parse(&text, "h").unwrap()
    }

    fn sentinel_snapshots(&self) -> String {
        let mut snaps = String::new();
        for t in (0..30_000i64).step_by(1000) {
            let switched = self.switch_at.is_some_and(|s| t >= s);
            let master = if switched {
                "10.0.0.3:7003"
            } else {
                "10.0.0.1:7001"
            };
            for n in 1..=3i64 {
                let role = if (n == 3) == switched {
                    "master"
                } else {
                    "slave"
                };
                let offset = match (n, t >= 5000) {
                    (1, true) => 150,
                    (3, _) => self.promoted_offset,
                    _ => 90,
                };
                snaps.push_str(&(json!({"time": (t + n) * 1_000_000, "node": format!("n{n}"), "kind": "data",
                    "addr": format!("10.0.0.{n}:700{n}"),
                    "replication": {"role": role, "offset": offset, "replid": "r1", "time": (t + n) * 1_000_000}})
                    .to_string() + "\n"));
            }
            for n in 4..=6i64 {
                snaps.push_str(&(json!({"time": (t + n) * 1_000_000, "node": format!("n{n}"), "kind": "sentinel",
                    "addr": format!("10.0.0.{n}:26379"), "sentinel": {"master": master}}).to_string() + "\n"));
            }
        }
        snaps
    }

    fn shard_snapshots(&self) -> String {
        let mut snaps = String::new();
        for t in (0..30_000i64).step_by(1000) {
            for n in 1..=3i64 {
                let name = format!("n{n}");
                let holds = self
                    .shard_of_key
                    .iter()
                    .any(|(a, b, s)| *s == name && *a <= t && t < *b);
                let keys: Vec<&str> = if holds { vec![KEY] } else { vec![] };
                snaps.push_str(
                    &(json!({"time": (t + n) * 1_000_000, "node": name, "kind": "shard",
                    "addr": format!("10.0.0.{n}:700{n}"), "keys": keys})
                    .to_string()
                        + "\n"),
                );
            }
        }
        snaps
    }

    fn judge(&self, target: &str, appendonly: bool, opt: u32, eject: bool) -> claims::ClaimsResult {
        let h = self.history();
        let snaps = if target == "sentinel" {
            self.sentinel_snapshots()
        } else {
            self.shard_snapshots()
        };
        let test = json!({"options": {"node_timeout": 2000, "target": target, "nodes": 6}});
        let tb = json!({"mono_ms": 1000, "wall_ms": 1000});
        let d = RunData::build(&test, Some(&tb), &h, &snaps, &[]);
        assert!(d.damage.is_empty(), "{:?}", d.damage);
        let r = check(&h, SetOptions::default());
        let f = Facts::with_options(&d, &h, appendonly, opt, eject);
        claims::judge(Model::RedisCluster, target, claims::set_anomalies(&r), &f)
    }
}

/// n1 and one sentinel (n4) cut off from n2, n3, n5, n6.
fn jepsen_partition() -> Value {
    json!({"refuses-from": {
        "n1": ["n2", "n3", "n5", "n6"], "n4": ["n2", "n3", "n5", "n6"],
        "n2": ["n1", "n4"], "n3": ["n1", "n4"], "n5": ["n1", "n4"], "n6": ["n1", "n4"]}})
}

#[test]
fn sentinel_partitioned_master_loses_its_minority_writes_as_documented() {
    let mut r = Run::new();
    r.add(1000, 1, "n1").add(8000, 2, "n1");
    r.fault(6000, 20_000, "partition", jepsen_partition());
    r.switch_at = Some(10_000);
    let c = r.judge("sentinel", true, 0, false);
    assert_eq!((c.anomalies, c.explained), (1, 1), "{c:#?}");
    assert_eq!(c.by_mechanism["partitioned-master"], 1, "{c:#?}");
    assert!(
        c.summary.starts_with("valid under sentinel claims"),
        "{}",
        c.summary
    );
    let ev = &c.explained_examples[0].evidence[0];
    assert_eq!(ev["acked_by"], "n1");
    assert_eq!(ev["failover"]["slot_moved_to"], "n3");
    // With min-replicas-to-write 1 the master must stop 10 s after losing its
    // replicas: an ack 13 s in is not what Sentinel documents.
    let mut r = Run::new();
    r.add(1000, 1, "n1").add(19_500, 2, "n1");
    r.fault(6000, 20_000, "partition", jepsen_partition());
    r.switch_at = Some(10_000);
    assert_eq!(r.judge("sentinel", true, 0, false).unexplained, 0);
    let c = r.judge("sentinel", true, 1, false);
    assert_eq!(c.unexplained, 1, "{c:#?}");
}

#[test]
fn sentinel_failover_without_the_write_is_async_replication_unless_offsets_show_it() {
    let mut r = Run::new();
    r.add(1000, 1, "n1").add(5000, 2, "n1");
    r.fault(6000, 20_000, "kill", json!(["n1"]));
    r.switch_at = Some(10_000);
    let c = r.judge("sentinel", true, 0, false);
    assert_eq!(c.by_mechanism.get("async-replication"), Some(&1), "{c:#?}");
    // The promoted replica had replicated past the master's offset after the ack.
    r.promoted_offset = 200;
    let c = r.judge("sentinel", true, 0, false);
    assert_eq!(c.unexplained, 1, "{c:#?}");
}

#[test]
fn sentinel_loss_without_any_failover_is_unexplained() {
    let mut r = Run::new();
    r.add(1000, 1, "n1").add(5000, 2, "n1");
    let c = r.judge("sentinel", true, 0, false);
    assert_eq!(c.unexplained, 1, "{c:#?}");
    assert!(
        c.summary.starts_with("INVALID under sentinel claims"),
        "{}",
        c.summary
    );
}

#[test]
fn twemproxy_losses_need_a_restart_without_persistence_or_an_ejection() {
    // The key lives on n2; n2 is killed after the ack.
    let mut r = Run::new();
    r.add(1000, 1, "n4").add(5000, 2, "n4");
    r.shard_of_key = vec![(0, 30_000, "n2")];
    r.fault(6000, 9000, "kill", json!(["n2"]));
    assert_eq!(
        r.judge("twemproxy", false, 0, false)
            .by_mechanism
            .get("no-persistence"),
        Some(&1)
    );
    // With AOF the restart keeps the key: nothing documented loses it.
    assert_eq!(r.judge("twemproxy", true, 0, false).unexplained, 1);
    // Auto-eject: the key moved to n3 while n2 was out of the ring.
    let mut r = Run::new();
    r.add(1000, 1, "n4").add(7000, 2, "n4");
    r.shard_of_key = vec![(0, 30_000, "n2"), (6500, 12_000, "n3")];
    r.fault(6000, 9000, "pause", json!(["n2"]));
    let c = r.judge("twemproxy", true, 0, true);
    assert_eq!(c.by_mechanism.get("auto-eject-remap"), Some(&1), "{c:#?}");
    assert!(c.summary.contains("twemproxy claims"), "{}", c.summary);
    // Without auto-eject the same history is not explained.
    assert_eq!(r.judge("twemproxy", true, 0, false).unexplained, 1);
}
