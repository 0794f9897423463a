//! Detection latency per fault (fault start -> first PFAIL -> FAIL decided -> FAIL
//! known by every node that should learn it), failover time (fault start -> a replica
//! of a faulted master starts and wins its election) and false FAILs (a FAIL about a
//! node no fault touched). Measurements only: they do not change the verdict.

use serde::Serialize;
use serde_json::{json, Value};

use crate::run_data::{Ev, FaultWindow, RunData};

/// One faulted node's detection timeline, in ms after the fault started.
#[derive(Debug, Serialize)]
pub struct Detection {
    pub fault: String,
    pub start_ms: i64,
    pub node: String,
    pub first_pfail_ms: Option<i64>,
    pub fail_decided_ms: Option<i64>,
    pub fail_known_by_all_ms: Option<i64>,
    /// Nodes expected to learn the FAIL, and how many did.
    pub expected_knowers: usize,
    pub knowers: usize,
}

/// One faulted master's failover, in ms after the fault started.
#[derive(Debug, Serialize)]
pub struct Failover {
    pub fault: String,
    pub start_ms: i64,
    /// The master the fault cut off (a node that owned slots when the fault began).
    pub master: String,
    /// The replica that won the election for it, if one did.
    pub promoted: Option<String>,
    pub election_started_ms: Option<i64>,
    pub won_ms: Option<i64>,
}

/// The measurement.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub detections: Vec<Detection>,
    /// One entry per master that a fault made unreachable.
    pub failovers: Vec<Failover>,
    pub summary: Value,
    pub false_fails: Vec<Value>,
    pub notes: Vec<String>,
}

fn id_of<'a>(d: &'a RunData, name: &str) -> Option<&'a String> {
    d.names.iter().find(|(_, n)| *n == name).map(|(id, _)| id)
}

/// Which nodes a fault makes unreachable, and who should notice.
fn faulted(d: &RunData, f: &FaultWindow) -> Vec<(String, Vec<String>)> {
    match f.kind.as_str() {
        "pause" | "kill" => f
            .targets
            .iter()
            .map(|t| {
                let others = d
                    .nodes
                    .iter()
                    .filter(|n| !f.targets.contains(n))
                    .cloned()
                    .collect();
                (t.clone(), others)
            })
            .collect(),
        "partition" => {
            // Each node cut off from others: those it cannot talk with should learn.
            d.nodes
                .iter()
                .map(|x| {
                    let cut: Vec<String> = d
                        .nodes
                        .iter()
                        .filter(|y| *y != x)
                        .filter(|y| {
                            f.grudge.get(x.as_str()).is_some_and(|g| g.contains(y))
                                || f.grudge.get(y.as_str()).is_some_and(|g| g.contains(x))
                        })
                        .cloned()
                        .collect();
                    (x.clone(), cut)
                })
                // A node cut from at most a minority is not expected to be failed.
                .filter(|(_, cut)| cut.len() * 2 > d.nodes.len())
                .collect()
        }
        _ => vec![],
    }
}

/// Runs the measurement.
pub fn measure(d: &RunData) -> Latency {
    let mut out = Latency {
        detections: vec![],
        failovers: vec![],
        summary: Value::Null,
        false_fails: vec![],
        notes: vec![],
    };
    if let Some(why) = d.events_unusable() {
        out.notes.push(format!("not measured: {why}"));
        return out;
    }
    let horizon = d.node_timeout_ms * 10;
    for f in &d.faults {
        for (node, knowers) in faulted(d, f) {
            let Some(id) = id_of(d, &node) else { continue };
            let end = f.stop_ms.unwrap_or(i64::MAX).min(f.start_ms + horizon);
            let in_window = |t: Option<i64>| t.is_some_and(|t| t >= f.start_ms && t <= end);
            let first_pfail = d
                .events
                .iter()
                .filter(|e| in_window(e.t_ms))
                .find(|e| matches!(&e.ev, Ev::PfailSet { about } if about == id))
                .and_then(|e| e.t_ms);
            let decided = d
                .events
                .iter()
                .filter(|e| in_window(e.t_ms))
                .find(|e| matches!(&e.ev, Ev::FailMarked { about, .. } if about == id))
                .and_then(|e| e.t_ms);
            let mut known_at = Vec::new();
            for k in &knowers {
                let t = d
                    .events_of(k)
                    .filter(|e| in_window(e.t_ms))
                    .find(|e| {
                        matches!(&e.ev, Ev::FailMarked { about, .. } | Ev::FailReceived { about, .. } if about == id)
                    })
                    .and_then(|e| e.t_ms);
                if let Some(t) = t {
                    known_at.push(t);
                }
            }
            let all = (known_at.len() == knowers.len() && !knowers.is_empty())
                .then(|| known_at.iter().copied().max())
                .flatten();
            if is_master_at(d, &node, id, f.start_ms) {
                out.failovers.push(failover(d, f, &node, id, end));
            }
            out.detections.push(Detection {
                fault: f.kind.clone(),
                start_ms: f.start_ms,
                node,
                first_pfail_ms: first_pfail.map(|t| t - f.start_ms),
                fail_decided_ms: decided.map(|t| t - f.start_ms),
                fail_known_by_all_ms: all.map(|t| t - f.start_ms),
                expected_knowers: knowers.len(),
                knowers: known_at.len(),
            });
        }
    }
    // False FAILs: no fault touched the node (or, for partitions, its links) near then.
    let margin = d.node_timeout_ms * 3 + 2000;
    for e in &d.events {
        let Ev::FailMarked { about, .. } = &e.ev else {
            continue;
        };
        let Some(t) = e.t_ms else { continue };
        let name = d.name(about);
        let touched = d.faults.iter().any(|f| {
            f.start_ms - margin <= t
                && f.stop_ms.is_none_or(|s| t <= s + margin)
                && (f.targets.contains(&name) || f.targets.is_empty())
        });
        if !touched {
            out.false_fails
                .push(json!({"decider": e.node, "about": name, "t_ms": t}));
        }
    }
    out.summary = summarize(&out.detections, &out.failovers);
    out
}

/// The role of `id` just before `t_ms`: its own latest snapshot, else any other
/// node's view of it. True only for a master that owned slots (a failover needs one).
fn is_master_at(d: &RunData, name: &str, id: &str, t_ms: i64) -> bool {
    let line_of = |s: &crate::run_data::Snapshot| {
        s.lines
            .as_ref()
            .and_then(|ls| ls.iter().find(|l| l.id == id).cloned())
    };
    let own = d.snapshot_before(name, t_ms).and_then(line_of);
    let any = || {
        d.snapshots
            .iter()
            .filter(|s| s.t_ms <= t_ms)
            .rev()
            .find_map(line_of)
    };
    own.or_else(any)
        .is_some_and(|l| l.master && !l.slots.is_empty())
}

/// Which master `node` replicated just before `t_ms` (its own view): None without a
/// snapshot, Some(None) when it was a master itself.
fn master_of_at(d: &RunData, node: &str, t_ms: i64) -> Option<Option<String>> {
    d.snapshot_before(node, t_ms)
        .and_then(|s| s.lines.as_ref())
        .and_then(|ls| ls.iter().find(|l| l.myself))
        .map(|l| l.master_of.clone())
}

/// The first election won by a replica of `master` after the fault began. The
/// election may end shortly after the heal (it was already under way), so the window
/// reaches two node timeouts past the fault's end.
fn failover(d: &RunData, f: &FaultWindow, master: &str, id: &str, end: i64) -> Failover {
    let until = end.saturating_add(d.node_timeout_ms * 2);
    let in_window = |t: Option<i64>| t.is_some_and(|t| t >= f.start_ms && t <= until);
    // A replica whose pre-fault view names no master (no snapshot) still counts: the
    // win is then attributed by time alone.
    let replica_of_master = |node: &str| {
        node != master && master_of_at(d, node, f.start_ms).is_none_or(|m| m.as_deref() == Some(id))
    };
    let won = d
        .events
        .iter()
        .filter(|e| in_window(e.t_ms))
        .find(|e| matches!(e.ev, Ev::FailoverWon { .. }) && replica_of_master(&e.node));
    let (promoted, won_ms, started) = match won {
        Some(w) => {
            let started = d
                .events_of(&w.node)
                .filter(|e| in_window(e.t_ms) && e.t_ms <= w.t_ms)
                .find(|e| matches!(e.ev, Ev::FailoverStarted { .. }))
                .and_then(|e| e.t_ms);
            (Some(w.node.clone()), w.t_ms, started)
        }
        None => (None, None, None),
    };
    Failover {
        fault: f.kind.clone(),
        start_ms: f.start_ms,
        master: master.to_string(),
        promoted,
        election_started_ms: started.map(|t| t - f.start_ms),
        won_ms: won_ms.map(|t| t - f.start_ms),
    }
}

fn stats(xs: &mut [i64]) -> Value {
    if xs.is_empty() {
        return json!({"count": 0});
    }
    xs.sort_unstable();
    let n = xs.len();
    let mean = xs.iter().sum::<i64>() as f64 / n as f64;
    json!({
        "count": n,
        "min": xs.first(),
        "median": xs.get(n / 2),
        "mean": (mean * 10.0).round() / 10.0,
        "max": xs.last(),
    })
}

fn summarize(ds: &[Detection], fos: &[Failover]) -> Value {
    let mut p: Vec<i64> = ds.iter().filter_map(|d| d.first_pfail_ms).collect();
    let mut f: Vec<i64> = ds.iter().filter_map(|d| d.fail_decided_ms).collect();
    let mut k: Vec<i64> = ds.iter().filter_map(|d| d.fail_known_by_all_ms).collect();
    let mut w: Vec<i64> = fos.iter().filter_map(|f| f.won_ms).collect();
    json!({
        "faulted_nodes": ds.len(),
        "first_pfail_ms": stats(&mut p),
        "fail_decided_ms": stats(&mut f),
        "fail_known_by_all_ms": stats(&mut k),
        "masters_faulted": fos.len(),
        "failover_ms": stats(&mut w),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;

    fn id(n: usize) -> String {
        char::from(b'a' + n as u8).to_string().repeat(40)
    }

    /// A 4-node view: n0, n1, n2 masters; n3 replicates n2.
    fn view(me: usize) -> String {
        (0..4)
            .map(|i| {
                let me_flag = if i == me { "myself," } else { "" };
                let (role, master, slots) = match i {
                    0 => ("master", "-".to_string(), "0-5460"),
                    1 => ("master", "-".to_string(), "5461-10922"),
                    2 => ("master", "-".to_string(), "10923-16383"),
                    _ => ("slave", id(2), ""),
                };
                format!(
                    "{} 127.0.0.1:700{i}@1 {me_flag}{role} {master} 0 0 1 connected {slots}\n",
                    id(i)
                )
            })
            .collect()
    }

    fn run(target: &str, events: &[(usize, i64, Value)]) -> RunData {
        let h = [
            json!({"index": 0, "time": 1_000_000_000u64, "process": "nemesis", "type": "info", "f": "start-kill", "value": {}}),
            json!({"index": 1, "time": 1_000_000_000u64, "process": "nemesis", "type": "info", "f": "start-kill", "value": {"targets": [target], "verified": true}}),
            json!({"index": 2, "time": 9_000_000_000u64, "process": "nemesis", "type": "info", "f": "stop-kill", "value": {}}),
        ];
        let text: String = h.iter().map(|l| l.to_string() + "\n").collect();
        let h = History::parse(&text, "h").unwrap();
        let snaps: String = (0..4)
            .map(|n| {
                json!({"time": 500_000_000u64, "node": format!("n{n}"), "nodes": view(n)})
                    .to_string()
                    + "\n"
            })
            .collect();
        let logs: Vec<(String, Option<String>)> = (0..4)
            .map(|n| {
                let mut text = json!({"node": id(n), "wall_ms": 1000, "mono_ms": 1000, "event": "started", "id": id(n)}).to_string() + "\n";
                for (k, t, e) in events.iter().filter(|(k, _, _)| *k == n) {
                    let mut o = json!({"node": id(*k), "wall_ms": 1000 + t, "mono_ms": 1000 + t});
                    for (key, v) in e.as_object().unwrap() {
                        o[key] = v.clone();
                    }
                    text.push_str(&(o.to_string() + "\n"));
                }
                (format!("n{n}"), Some(text))
            })
            .collect();
        let test = json!({"options": {"node_timeout": 1000, "target": "hearsay"}});
        let tb = json!({"mono_ms": 1000, "wall_ms": 1000});
        RunData::build(&test, Some(&tb), &h, &snaps, &logs)
    }

    #[test]
    fn failover_time_runs_from_fault_start_to_the_replica_win() {
        let d = run(
            "n2",
            &[
                (3, 3000, json!({"event": "election_started", "epoch": 7})),
                // A win by a node that replicates another master is not this failover.
                (0, 3200, json!({"event": "election_won"})),
                (3, 3500, json!({"event": "election_won"})),
            ],
        );
        let m = measure(&d);
        assert_eq!(m.failovers.len(), 1, "{m:?}");
        let f = &m.failovers[0];
        assert_eq!(f.master, "n2");
        assert_eq!(f.promoted.as_deref(), Some("n3"));
        assert_eq!(f.election_started_ms, Some(2000));
        assert_eq!(f.won_ms, Some(2500));
        assert_eq!(m.summary["failover_ms"]["median"], 2500);
        assert_eq!(m.summary["masters_faulted"], 1);
    }

    #[test]
    fn a_faulted_replica_or_a_master_without_election_has_no_failover_time() {
        let m = measure(&run("n3", &[(3, 3500, json!({"event": "election_won"}))]));
        assert!(m.failovers.is_empty(), "{m:?}");
        assert_eq!(m.summary["masters_faulted"], 0);
        let m = measure(&run("n1", &[]));
        assert_eq!(m.failovers.len(), 1);
        assert_eq!(m.failovers[0].won_ms, None);
        assert_eq!(m.summary["failover_ms"]["count"], 0);
    }
}
