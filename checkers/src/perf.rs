//! The perf checker: latency quantiles per op type, throughput and availability (share
//! of ok completions) over time, and the same figures per fault window (during each
//! nemesis kind, from its `start-K` to its `stop-K`, versus healthy time).
//!
//! Perf never invalidates a run: its verdict is always true (unknown when there are no
//! client ops), as in Jepsen.

use crate::history::{History, OpType, Process};
use crate::verdict::Valid;
use serde::Serialize;
use std::collections::BTreeMap;

/// Latency figures in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(mut ns: Vec<u64>) -> Latency {
        ns.sort_unstable();
        let q = |p: f64| -> f64 {
            if ns.is_empty() {
                return 0.0;
            }
            let i = ((ns.len() - 1) as f64 * p).round() as usize;
            ns.get(i).copied().unwrap_or(0) as f64 / 1e6
        };
        Latency {
            count: ns.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: q(1.0),
        }
    }
}

/// Completion counts and derived rates for a stretch of time.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct Window {
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// ok / all completions (None when there were none).
    pub availability: Option<f64>,
    /// ok completions per second.
    pub throughput: f64,
    pub seconds: f64,
}

impl Window {
    fn finish(&mut self) {
        let all = self.ok + self.fail + self.info;
        self.availability = (all > 0).then(|| self.ok as f64 / all as f64);
        self.throughput = if self.seconds > 0.0 {
            self.ok as f64 / self.seconds
        } else {
            0.0
        };
    }
    fn add(&mut self, kind: OpType) {
        match kind {
            OpType::Ok => self.ok += 1,
            OpType::Fail => self.fail += 1,
            _ => self.info += 1,
        }
    }
}

/// The perf checker's result.
#[derive(Clone, Debug, Serialize)]
pub struct PerfResult {
    pub valid: Valid,
    /// Per op `f`, latency of ok completions and of all completions.
    pub latency_ok: BTreeMap<String, Latency>,
    pub latency_all: BTreeMap<String, Latency>,
    pub overall: Window,
    /// One window per `bucket_s` seconds of the run.
    pub bucket_s: f64,
    pub timeline: Vec<Window>,
    /// Per nemesis kind (e.g. `partition`), figures for completions while it was
    /// active; `healthy` for completions while none was.
    pub by_fault: BTreeMap<String, Window>,
}

/// Fault intervals by kind from nemesis `start-K` / `stop-K` ops (an unstopped fault
/// lasts to the end).
fn fault_intervals(history: &History, end: u64) -> Vec<(String, u64, u64)> {
    let mut open: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for op in history.ops.iter().filter(|o| o.process == Process::Nemesis) {
        if let Some(k) = op.f.strip_prefix("start-") {
            open.entry(k.to_string()).or_insert(op.time);
        } else if let Some(k) = op.f.strip_prefix("stop-") {
            if let Some(t) = open.remove(k) {
                out.push((k.to_string(), t, op.time));
            }
        }
    }
    out.extend(open.into_iter().map(|(k, t)| (k, t, end)));
    out
}

/// Computes perf figures; `bucket_s` is the timeline resolution in seconds.
pub fn check(history: &History, bucket_s: f64) -> PerfResult {
    let bucket_ns = ((bucket_s.max(0.001)) * 1e9) as u64;
    let pairs = history.pairs();
    let end = history.ops.iter().map(|o| o.time).max().unwrap_or(0);
    let start = history.ops.iter().map(|o| o.time).min().unwrap_or(0);
    let faults = fault_intervals(history, end);
    let mut lat_ok: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut lat_all: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut overall = Window::default();
    let buckets = ((end.saturating_sub(start)) / bucket_ns + 1).min(100_000) as usize;
    let mut timeline = vec![Window::default(); buckets];
    let mut by_fault: BTreeMap<String, Window> = BTreeMap::new();
    for (inv, done) in &pairs {
        let Some(done) = done else { continue };
        let took = done.time.saturating_sub(inv.time);
        lat_all.entry(inv.f.clone()).or_default().push(took);
        if done.kind == OpType::Ok {
            lat_ok.entry(inv.f.clone()).or_default().push(took);
        }
        overall.add(done.kind);
        let b = ((done.time.saturating_sub(start)) / bucket_ns) as usize;
        if let Some(w) = timeline.get_mut(b) {
            w.add(done.kind);
        }
        let mut any = false;
        for (k, s, e) in &faults {
            if (*s..=*e).contains(&done.time) {
                by_fault.entry(k.clone()).or_default().add(done.kind);
                any = true;
            }
        }
        if !any {
            by_fault.entry("healthy".into()).or_default().add(done.kind);
        }
    }
    // Seconds per window kind, for throughput.
    let total_s = end.saturating_sub(start) as f64 / 1e9;
    let mut fault_s: BTreeMap<String, f64> = BTreeMap::new();
    for (k, s, e) in &faults {
        *fault_s.entry(k.clone()).or_default() += e.saturating_sub(*s) as f64 / 1e9;
    }
    // Healthy time: the run minus the union of all fault intervals.
    let mut iv: Vec<(u64, u64)> = faults.iter().map(|(_, s, e)| (*s, *e)).collect();
    iv.sort_unstable();
    let (mut covered, mut cur): (u64, Option<(u64, u64)>) = (0, None);
    for (s, e) in iv {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                covered += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = cur {
        covered += ce.saturating_sub(cs);
    }
    fault_s.insert(
        "healthy".into(),
        (end.saturating_sub(start).saturating_sub(covered)) as f64 / 1e9,
    );
    for (k, w) in by_fault.iter_mut() {
        w.seconds = fault_s.get(k).copied().unwrap_or(0.0);
        w.finish();
    }
    overall.seconds = total_s;
    overall.finish();
    for w in timeline.iter_mut() {
        w.seconds = bucket_s;
        w.finish();
    }
    let valid = if overall.ok + overall.fail + overall.info == 0 {
        Valid::Unknown
    } else {
        Valid::True
    };
    PerfResult {
        valid,
        latency_ok: lat_ok
            .into_iter()
            .map(|(k, v)| (k, Latency::of(v)))
            .collect(),
        latency_all: lat_all
            .into_iter()
            .map(|(k, v)| (k, Latency::of(v)))
            .collect(),
        overall,
        bucket_s,
        timeline,
        by_fault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(i: u64, t_ms: u64, p: serde_json::Value, ty: &str, f: &str) -> String {
        json!({"index": i, "time": t_ms * 1_000_000, "process": p, "type": ty, "f": f, "value": null})
            .to_string()
    }

    #[test]
    fn quantiles_windows_and_faults() {
        let lines = [
            line(0, 0, json!(0), "invoke", "read"),
            line(1, 10, json!(0), "ok", "read"),
            line(2, 1000, json!("nemesis"), "info", "start-partition"),
            line(3, 1100, json!(0), "invoke", "write"),
            line(4, 1200, json!(0), "fail", "write"),
            line(5, 1300, json!(1), "invoke", "write"),
            line(6, 1800, json!(1), "info", "write"),
            line(7, 2000, json!("nemesis"), "info", "stop-partition"),
            line(8, 2100, json!(0), "invoke", "read"),
            line(9, 2130, json!(0), "ok", "read"),
        ];
        let h = History::parse(&(lines.join("\n") + "\n"), "t").unwrap();
        let r = check(&h, 1.0);
        assert_eq!(r.valid, Valid::True);
        assert_eq!(r.latency_ok["read"].count, 2);
        assert_eq!(r.latency_ok["read"].max, 30.0);
        assert_eq!(r.latency_ok["read"].p50, 30.0);
        assert_eq!(r.latency_all["write"].count, 2);
        assert_eq!(r.overall.availability, Some(0.5));
        let p = &r.by_fault["partition"];
        assert_eq!((p.ok, p.fail, p.info), (0, 1, 1));
        assert_eq!(p.availability, Some(0.0));
        assert_eq!(r.by_fault["healthy"].ok, 2);
        assert!((r.by_fault["healthy"].seconds - 1.13).abs() < 1e-6);
        assert_eq!(r.timeline.len(), 3);
        assert_eq!(r.timeline[1].fail + r.timeline[1].info, 2);
    }

    #[test]
    fn empty_history_is_unknown() {
        let r = check(&History::default(), 1.0);
        assert_eq!(r.valid, Valid::Unknown);
        assert!(r.latency_ok.is_empty());
    }
}
