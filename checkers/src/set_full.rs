//! Per-element set analysis, after Jepsen's `set-full`: for every element, when it
//! became known, whether reads after that saw it stably, lost it, or never looked.
//!
//! An element is *known* once its add completed ok or a read first returned it. Only
//! ok reads (`read` and `final-read`) invoked after that instant count:
//! - **stable**: the latest such read contains it; its stable latency is the time from
//!   known to the completion of the first read of the final present run.
//! - **lost**: the latest such read misses it. Invalid.
//! - **never-read**: no read began after it became known. Unknown, not invalid.
//! - **stale**: reads that missed an element that ends stable (reported, as Jepsen).
//!
//! Adds that failed are ignored; adds that ended `info` count only once seen.

use crate::history::{History, OpType};
use crate::set::SetValue;
use crate::verdict::Valid;
use serde::Serialize;
use std::collections::BTreeMap;

const EXAMPLES: usize = 20;

/// Latency quantiles in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The set-full result.
#[derive(Clone, Debug, Serialize)]
pub struct SetFullResult {
    pub valid: Valid,
    pub known_count: usize,
    pub stable_count: usize,
    pub lost_count: usize,
    pub lost: Vec<(String, i64)>,
    pub never_read_count: usize,
    pub stale_count: usize,
    /// Elements with at least one stale read, with their stale read count.
    pub worst_stale: Vec<(String, i64, usize)>,
    pub stable_latency_ms: Quantiles,
    pub lost_latency_ms: Quantiles,
}

struct Read {
    invoke_t: u64,
    complete_t: u64,
    /// Sorted, for binary search.
    elements: Vec<i64>,
}

fn quantiles(mut v: Vec<u64>) -> Quantiles {
    v.sort_unstable();
    let q = |p: f64| {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        v.get(i).copied().unwrap_or(0) as f64 / 1e6
    };
    Quantiles {
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: q(1.0),
    }
}

/// Analyses a set history element by element (times are history `time`s).
pub fn check(history: &History) -> SetFullResult {
    // key -> element -> ok completion time of its add (None: info / unfinished)
    // BTreeMaps throughout: results.json must be identical when re-checked.
    let mut adds: BTreeMap<String, BTreeMap<i64, Option<u64>>> = BTreeMap::new();
    let mut reads: BTreeMap<String, Vec<Read>> = BTreeMap::new();
    for (inv, done) in history.pairs() {
        let iv = SetValue::of(&inv.value);
        let Some(key) = iv.key() else {
            continue;
        };
        match inv.f.as_str() {
            "add" => {
                let Some(el) = iv.element() else {
                    continue;
                };
                if done.is_some_and(|d| d.kind == OpType::Fail) {
                    continue;
                }
                let ok_t = done.filter(|d| d.kind == OpType::Ok).map(|d| d.time);
                adds.entry(key).or_default().insert(el, ok_t);
            }
            "read" | "final-read" => {
                let Some(d) = done.filter(|d| d.kind == OpType::Ok) else {
                    continue;
                };
                let Some(elements) = SetValue::of(&d.value).elements_lenient() else {
                    continue;
                };
                reads.entry(key).or_default().push(Read {
                    invoke_t: inv.time,
                    complete_t: d.time,
                    elements,
                });
            }
            _ => {}
        }
    }
    let mut known_count = 0;
    let mut stable_count = 0;
    let mut lost = Vec::new();
    let mut lost_count = 0;
    let mut never_read_count = 0;
    let mut stale_count = 0;
    let mut worst_stale: Vec<(String, i64, usize)> = Vec::new();
    let mut stable_lat = Vec::new();
    let mut lost_lat = Vec::new();
    let no_reads = Vec::new();
    for (key, els) in &adds {
        let mut rs: Vec<&Read> = reads.get(key).unwrap_or(&no_reads).iter().collect();
        rs.sort_by_key(|r| r.invoke_t);
        for (&el, &ok_t) in els {
            let has = |r: &Read| r.elements.binary_search(&el).is_ok();
            let first_seen = rs
                .iter()
                .filter(|r| has(r))
                .min_by_key(|r| r.complete_t)
                .map(|r| (r.complete_t, r.invoke_t));
            // Reads that count: those begun after the ack, or, when a read saw the
            // element first, that read and every one begun after it.
            // (known, reads from, inclusive)
            let (known, from, inclusive) = match (ok_t, first_seen) {
                (Some(ok), Some((seen, seen_inv))) if seen < ok => (seen, seen_inv, true),
                (Some(ok), _) => (ok, ok, false),
                (None, Some((seen, seen_inv))) => (seen, seen_inv, true),
                // An info add never seen: it may never have happened.
                (None, None) => continue,
            };
            let counts = |r: &Read| r.invoke_t > from || (inclusive && r.invoke_t == from);
            known_count += 1;
            // One pass over the counted reads, in invoke order: the start of the
            // current run of present (or absent) reads, and the absent count.
            let (mut any, mut last_present) = (false, false);
            let (mut present_run, mut absent_run) = (None, None);
            let mut stale = 0usize;
            for r in rs.iter().filter(|r| counts(r)) {
                any = true;
                last_present = has(r);
                if last_present {
                    present_run.get_or_insert(r.complete_t);
                    absent_run = None;
                } else {
                    stale += 1;
                    absent_run.get_or_insert(r.complete_t);
                    present_run = None;
                }
            }
            if !any {
                never_read_count += 1;
            } else if last_present {
                stable_count += 1;
                if let Some(t) = present_run {
                    stable_lat.push(t.saturating_sub(known));
                }
                if stale > 0 {
                    stale_count += stale;
                    worst_stale.push((key.clone(), el, stale));
                }
            } else {
                lost_count += 1;
                if let Some(t) = absent_run {
                    lost_lat.push(t.saturating_sub(known));
                }
                if lost.len() < EXAMPLES {
                    lost.push((key.clone(), el));
                }
            }
        }
    }
    worst_stale.sort_by_key(|w| std::cmp::Reverse(w.2));
    worst_stale.truncate(EXAMPLES);
    let mut valid = if lost_count > 0 {
        Valid::False
    } else {
        Valid::True
    };
    if never_read_count > 0 || known_count == 0 {
        valid = valid.and(Valid::Unknown);
    }
    SetFullResult {
        valid,
        known_count,
        stable_count,
        lost_count,
        lost,
        never_read_count,
        stale_count,
        worst_stale,
        stable_latency_ms: quantiles(stable_lat),
        lost_latency_ms: quantiles(lost_lat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(lines: &[(u64, &str, &str, serde_json::Value)]) -> History {
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, (p, t, f, v))| {
                json!({"index": i, "time": i as u64 * 1_000_000, "process": p, "type": t, "f": f, "value": v})
                    .to_string()
            })
            .collect();
        History::parse(&(text.join("\n") + "\n"), "t").unwrap()
    }

    fn add(el: i64) -> serde_json::Value {
        json!({"key": "k", "element": el})
    }
    fn rd(els: &[i64]) -> serde_json::Value {
        json!({"key": "k", "elements": els})
    }

    #[test]
    fn stable_stale_lost_and_never_read() {
        let k = json!({"key": "k"});
        let r = check(&h(&[
            (0, "invoke", "add", add(1)),
            (0, "ok", "add", add(1)),
            (1, "invoke", "read", k.clone()),
            (1, "ok", "read", rd(&[])), // stale for 1
            (1, "invoke", "read", k.clone()),
            (1, "ok", "read", rd(&[1])),
            (0, "invoke", "add", add(2)),
            (0, "ok", "add", add(2)),
            (1, "invoke", "read", k.clone()),
            (1, "ok", "read", rd(&[1, 2])),
            (1, "invoke", "final-read", k.clone()),
            (1, "ok", "final-read", rd(&[1])), // 2 lost
            (0, "invoke", "add", add(3)),
            (0, "ok", "add", add(3)), // never read
        ]));
        assert_eq!(r.known_count, 3);
        assert_eq!(r.stable_count, 1);
        assert_eq!(r.stale_count, 1);
        assert_eq!(r.worst_stale, vec![("k".to_string(), 1, 1)]);
        // Known at t=1 ms, first read of the final present run completes at t=5 ms.
        assert_eq!(r.stable_latency_ms.max, 4.0);
        assert_eq!(r.lost, vec![("k".to_string(), 2)]);
        assert_eq!(r.never_read_count, 1);
        assert_eq!(r.valid, Valid::False);
    }

    #[test]
    fn info_add_counts_only_once_seen() {
        let k = json!({"key": "k"});
        let r = check(&h(&[
            (0, "invoke", "add", add(1)),
            (0, "info", "add", add(1)),
            (2, "invoke", "add", add(2)),
            (2, "info", "add", add(2)),
            (1, "invoke", "read", k.clone()),
            (1, "ok", "read", rd(&[2])),
            (1, "invoke", "read", k.clone()),
            (1, "ok", "read", rd(&[2])),
        ]));
        assert_eq!(r.known_count, 1);
        assert_eq!(r.stable_count, 1);
        assert_eq!(r.valid, Valid::True);
        assert_eq!(check(&History::default()).valid, Valid::Unknown);
    }
}
