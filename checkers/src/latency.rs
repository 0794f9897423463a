//! Detection latency per fault (fault start -> first PFAIL -> FAIL decided -> FAIL
//! known by every node that should learn it) and false FAILs (a FAIL about a node no
//! fault touched). Measurements only: they do not change the verdict.

use serde::Serialize;
use serde_json::{json, Value};

use crate::protocol::{Ev, FaultWindow, RunData};

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

/// The measurement.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub detections: Vec<Detection>,
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
        summary: Value::Null,
        false_fails: vec![],
        notes: vec![],
    };
    if !d.has_timebase {
        out.notes
            .push("no timebase.json: events cannot be placed on the run's timeline".into());
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
    out.summary = summarize(&out.detections);
    out
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

fn summarize(ds: &[Detection]) -> Value {
    let mut p: Vec<i64> = ds.iter().filter_map(|d| d.first_pfail_ms).collect();
    let mut f: Vec<i64> = ds.iter().filter_map(|d| d.fail_decided_ms).collect();
    let mut k: Vec<i64> = ds.iter().filter_map(|d| d.fail_known_by_all_ms).collect();
    json!({
        "faulted_nodes": ds.len(),
        "first_pfail_ms": stats(&mut p),
        "fail_decided_ms": stats(&mut f),
        "fail_known_by_all_ms": stats(&mut k),
    })
}
