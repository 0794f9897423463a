//! Op counts per `f` and outcome, and latency quantiles of completed client ops
//! (Jepsen's `stats` and the numbers behind `perf`). Informational: never a verdict.

use crate::history::{History, OpType};
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts and latencies for one `f`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct FStats {
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// Invocations without a completion (the run ended or crashed first).
    pub pending: usize,
    /// Latency quantiles of completed ops in ms: p50, p95, p99, max.
    pub latency_ms: Option<[f64; 4]>,
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i.min(sorted.len() - 1)).copied().unwrap_or(0) as f64 / 1e6
}

/// Per-`f` statistics of the client ops.
pub fn stats(history: &History) -> BTreeMap<String, FStats> {
    let mut out: BTreeMap<String, FStats> = BTreeMap::new();
    let mut lat: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (inv, done) in history.pairs() {
        let s = out.entry(inv.f.clone()).or_default();
        match done {
            None => s.pending += 1,
            Some(d) => {
                match d.kind {
                    OpType::Ok => s.ok += 1,
                    OpType::Fail => s.fail += 1,
                    OpType::Info | OpType::Invoke => s.info += 1,
                }
                lat.entry(inv.f.clone())
                    .or_default()
                    .push(d.time.saturating_sub(inv.time));
            }
        }
    }
    for (f, mut v) in lat {
        v.sort_unstable();
        if let Some(s) = out.get_mut(&f) {
            s.latency_ms = Some([
                quantile(&v, 0.5),
                quantile(&v, 0.95),
                quantile(&v, 0.99),
                quantile(&v, 1.0),
            ]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_latency() {
        let lines = [
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"add","value":null}"#,
            r#"{"index":1,"time":2000000,"process":0,"type":"ok","f":"add","value":null}"#,
            r#"{"index":2,"time":3000000,"process":1,"type":"invoke","f":"add","value":null}"#,
            r#"{"index":3,"time":9000000,"process":1,"type":"info","f":"add","value":null}"#,
            r#"{"index":4,"time":9000000,"process":2,"type":"invoke","f":"read","value":null}"#,
        ];
        let h = History::parse(&(lines.join("\n") + "\n"), "t").unwrap();
        let s = stats(&h);
        assert_eq!(s["add"].ok, 1);
        assert_eq!(s["add"].info, 1);
        assert_eq!(s["read"].pending, 1);
        assert_eq!(s["add"].latency_ms, Some([6.0, 6.0, 6.0, 6.0]));
        assert_eq!(s["read"].latency_ms, None);
    }
}
