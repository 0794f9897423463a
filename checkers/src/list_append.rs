//! The list-append checker, after Elle's `list-append`.
//!
//! Ops: `txn` whose value is `{"ops": [[f, key, v], ..]}` with micro-ops
//! `["append", K, V]` (RPUSH of a value unique per key) and `["r", K, null]` (LRANGE),
//! the ok completion carrying `["r", K, [..]]`. `final-read` is a txn of reads only.
//!
//! Per key, the longest ok read is the key's order. Detected:
//! - **duplicates**: a read listing a value twice. Invalid.
//! - **garbage**: a read listing a value no txn appended to that key. Invalid.
//! - **aborted**: a read listing a value whose txn failed. Invalid.
//! - **incompatible-order**: a read that is not a prefix of the key's order. Invalid.
//! - **lost**: an acknowledged append missing from the last read of its key that
//!   began after the append completed. Invalid.
//! - **cycles**: the write-write, write-read and read-write dependencies between txns
//!   inferred from the orders (as Elle does for lists) form a cycle (G0, G1c, G2).
//!   Invalid.
//!
//! A key whose appends were never read back makes the verdict unknown.

use crate::history::{History, Op, OpType};
use crate::linear::MalformedOp;
use crate::verdict::Valid;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

const EXAMPLES: usize = 20;

/// One micro-op.
#[derive(Clone, Debug, PartialEq)]
enum Micro {
    Append(String, i64),
    Read(String, Option<Vec<i64>>),
}

/// One anomaly, with the txns (history indices of completions) involved.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Anomaly {
    pub key: String,
    pub index: u64,
    pub detail: String,
}

/// A dependency cycle between txns.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cycle {
    /// History indices of the txns' completions, in cycle order; each step names the
    /// edge kind (`ww`, `wr`, `rw`) and key.
    pub steps: Vec<(u64, String)>,
}

/// The list-append checker's result.
#[derive(Clone, Debug, Serialize)]
pub struct ListAppendResult {
    pub valid: Valid,
    pub txn_count: usize,
    pub ok_count: usize,
    pub keys: usize,
    pub anomaly_types: Vec<String>,
    pub duplicates: Vec<Anomaly>,
    pub garbage: Vec<Anomaly>,
    pub aborted: Vec<Anomaly>,
    pub incompatible_order: Vec<Anomaly>,
    pub lost: Vec<Anomaly>,
    pub lost_count: usize,
    pub cycles: Vec<Cycle>,
    pub never_read: Vec<String>,
    pub notes: Vec<String>,
    /// Every lost append and incompatible order (the lists above are capped), and
    /// the number of cycles found: the claims model attributes each one.
    #[serde(skip)]
    pub lost_all: Vec<Anomaly>,
    #[serde(skip)]
    pub incompatible_all: Vec<Anomaly>,
    #[serde(skip)]
    pub cycles_total: usize,
}

fn parse_micros(op: &Op, with_results: bool) -> Result<Vec<Micro>, MalformedOp> {
    let bad = |reason: String| MalformedOp {
        index: op.index,
        f: op.f.clone(),
        reason,
    };
    let v = op.value.json();
    let arr = v
        .get("ops")
        .and_then(|o| o.as_array())
        .ok_or_else(|| bad(format!("missing array \"ops\" in {}", op.value)))?;
    arr.iter()
        .map(|m| {
            let parts = m
                .as_array()
                .ok_or_else(|| bad(format!("micro-op {m} is not an array")))?;
            let (Some(f), Some(k), Some(v)) = (
                parts.first().and_then(|f| f.as_str()),
                parts.get(1).and_then(|k| k.as_str()),
                parts.get(2),
            ) else {
                return Err(bad(format!("micro-op {m} is not [f, key, value]")));
            };
            match f {
                "append" => Ok(Micro::Append(
                    k.to_string(),
                    v.as_i64()
                        .ok_or_else(|| bad(format!("append value {v} is not an integer")))?,
                )),
                "r" if !with_results || v.is_null() => Ok(Micro::Read(k.to_string(), None)),
                "r" => {
                    let list = v
                        .as_array()
                        .and_then(|a| a.iter().map(|x| x.as_i64()).collect::<Option<Vec<_>>>())
                        .ok_or_else(|| bad(format!("read result {v} is not a list of integers")))?;
                    Ok(Micro::Read(k.to_string(), Some(list)))
                }
                other => Err(bad(format!("unknown micro-op {other:?}"))),
            }
        })
        .collect()
}

struct Txn {
    /// Completion index (or invoke index for txns that never completed).
    id: u64,
    invoke: u64,
    complete: Option<u64>,
    kind: Option<OpType>,
    micros: Vec<Micro>,
}

fn is_prefix(a: &[i64], b: &[i64]) -> bool {
    a.len() <= b.len() && b.get(..a.len()) == Some(a)
}

/// Judges a list-append history.
pub fn check(history: &History) -> Result<ListAppendResult, MalformedOp> {
    let mut txns: Vec<Txn> = Vec::new();
    for (inv, done) in history.pairs() {
        if inv.kind != OpType::Invoke {
            continue;
        }
        if inv.f != "txn" && inv.f != "final-read" {
            return Err(MalformedOp {
                index: inv.index,
                f: inv.f.clone(),
                reason: "unknown list-append op".into(),
            });
        }
        let kind = done.map(|d| d.kind);
        let micros = match done.filter(|d| d.kind == OpType::Ok) {
            Some(d) => parse_micros(d, true)?,
            None => parse_micros(inv, false)?,
        };
        txns.push(Txn {
            id: done.map_or(inv.index, |d| d.index),
            invoke: inv.index,
            complete: done.filter(|d| d.kind == OpType::Ok).map(|d| d.index),
            kind,
            micros,
        });
    }
    let mut r = ListAppendResult {
        valid: Valid::Unknown,
        txn_count: txns.len(),
        ok_count: txns.iter().filter(|t| t.kind == Some(OpType::Ok)).count(),
        keys: 0,
        anomaly_types: Vec::new(),
        duplicates: Vec::new(),
        garbage: Vec::new(),
        aborted: Vec::new(),
        incompatible_order: Vec::new(),
        lost: Vec::new(),
        lost_count: 0,
        cycles: Vec::new(),
        never_read: Vec::new(),
        notes: Vec::new(),
        lost_all: Vec::new(),
        incompatible_all: Vec::new(),
        cycles_total: 0,
    };

    // key -> value -> (txn position, outcome)
    let mut appends: BTreeMap<&str, HashMap<i64, (usize, Option<OpType>)>> = BTreeMap::new();
    // key -> reads (txn position, list)
    let mut reads: BTreeMap<&str, Vec<(usize, &[i64])>> = BTreeMap::new();
    for (ti, t) in txns.iter().enumerate() {
        for m in &t.micros {
            match m {
                Micro::Append(k, v) => {
                    appends.entry(k).or_default().insert(*v, (ti, t.kind));
                }
                Micro::Read(k, Some(list)) => reads.entry(k).or_default().push((ti, list)),
                Micro::Read(_, None) => {}
            }
        }
    }
    let empty_appends = HashMap::new();
    let all_keys: std::collections::BTreeSet<&str> =
        appends.keys().chain(reads.keys()).copied().collect();
    r.keys = all_keys.len();
    // Dependency edges: (from txn, to txn, kind, key).
    let mut edges: Vec<(usize, usize, &'static str, &str)> = Vec::new();
    // Every anomaly is kept here; the lists in the result are capped at the end.
    let push = |v: &mut Vec<Anomaly>, key: &str, index: u64, detail: String| {
        v.push(Anomaly {
            key: key.to_string(),
            index,
            detail,
        });
    };
    for key in all_keys {
        let app = appends.get(key).unwrap_or(&empty_appends);
        let key_reads = reads.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let id = |ti: usize| txns.get(ti).map_or(0, |t| t.id);
        for (ti, list) in key_reads {
            let mut seen = HashSet::new();
            for v in list.iter() {
                if !seen.insert(*v) {
                    push(
                        &mut r.duplicates,
                        key,
                        id(*ti),
                        format!("{v} appears twice in {list:?}"),
                    );
                }
                match app.get(v) {
                    None => push(
                        &mut r.garbage,
                        key,
                        id(*ti),
                        format!("{v} was never appended"),
                    ),
                    Some((_, Some(OpType::Fail))) => push(
                        &mut r.aborted,
                        key,
                        id(*ti),
                        format!("{v} was appended by a failed txn"),
                    ),
                    _ => {}
                }
            }
        }
        // The key's order: the longest read; every read must be a prefix of it.
        let order: &[i64] = key_reads
            .iter()
            .map(|(_, l)| *l)
            .max_by_key(|l| l.len())
            .unwrap_or(&[]);
        for (ti, list) in key_reads {
            if !is_prefix(list, order) {
                // Name the first divergence, not both (possibly huge) lists.
                let at = list
                    .iter()
                    .zip(order.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(order.len());
                push(
                    &mut r.incompatible_order,
                    key,
                    id(*ti),
                    format!(
                        "read of {} values diverges from the key's order ({} values) at position {at}: read {:?}, order {:?}",
                        list.len(),
                        order.len(),
                        list.get(at),
                        order.get(at)
                    ),
                );
            }
        }
        // Lost: an ok append absent from a read that began after it completed.
        if key_reads.is_empty() {
            if !app.is_empty() {
                r.never_read.push(key.to_string());
            }
        } else {
            // Sorted, so that re-checking a run gives identical examples.
            let mut app_sorted: Vec<(&i64, &(usize, Option<OpType>))> = app.iter().collect();
            app_sorted.sort_unstable_by_key(|(v, _)| **v);
            for (v, (ai, kind)) in app_sorted {
                let Some(done_at) = txns.get(*ai).and_then(|t| t.complete) else {
                    continue;
                };
                if *kind != Some(OpType::Ok) {
                    continue;
                }
                let later = key_reads
                    .iter()
                    .filter(|(ti, _)| txns.get(*ti).is_some_and(|t| t.invoke > done_at))
                    .max_by_key(|(ti, _)| txns.get(*ti).map_or(0, |t| t.invoke));
                if let Some((ti, list)) = later {
                    if !list.contains(v) {
                        r.lost_count += 1;
                        push(
                            &mut r.lost,
                            key,
                            id(*ai),
                            format!("acknowledged {v} missing from read at {}", id(*ti)),
                        );
                    }
                }
            }
        }
        // Dependencies from the order: ww between consecutive appends, wr from the
        // writer of a read's last element, rw from a reader to the writer of the next.
        let writer = |v: &i64| app.get(v).map(|(ti, _)| *ti);
        for w in order.windows(2) {
            if let (Some(a), Some(b)) = (w.first().and_then(writer), w.get(1).and_then(writer)) {
                if a != b {
                    edges.push((a, b, "ww", key));
                }
            }
        }
        for (ti, list) in key_reads {
            if !is_prefix(list, order) {
                continue;
            }
            if let Some(w) = list.last().and_then(writer) {
                if w != *ti {
                    edges.push((w, *ti, "wr", key));
                }
            }
            if let Some(w) = order.get(list.len()).and_then(writer) {
                if w != *ti {
                    edges.push((*ti, w, "rw", key));
                }
            }
        }
    }
    let cycles = find_cycles(txns.len(), &edges);
    r.cycles_total = cycles.len();
    r.lost_all = r.lost.clone();
    r.incompatible_all = r.incompatible_order.clone();
    for v in [
        &mut r.duplicates,
        &mut r.garbage,
        &mut r.aborted,
        &mut r.incompatible_order,
        &mut r.lost,
    ] {
        v.truncate(EXAMPLES);
    }
    r.cycles = cycles
        .into_iter()
        .take(EXAMPLES)
        .map(|c| Cycle {
            steps: c
                .into_iter()
                .map(|(t, kind, key)| (txns.get(t).map_or(0, |t| t.id), format!("{kind} {key}")))
                .collect(),
        })
        .collect();

    let mut types = Vec::new();
    for (name, bad) in [
        ("duplicate", !r.duplicates.is_empty()),
        ("garbage", !r.garbage.is_empty()),
        ("aborted-read", !r.aborted.is_empty()),
        ("incompatible-order", !r.incompatible_order.is_empty()),
        ("lost-append", r.lost_count > 0),
        ("cycle", !r.cycles.is_empty()),
    ] {
        if bad {
            types.push(name.to_string());
        }
    }
    r.valid = if types.is_empty() {
        Valid::True
    } else {
        Valid::False
    };
    r.anomaly_types = types;
    if !r.never_read.is_empty() {
        r.valid = r.valid.and(Valid::Unknown);
        r.notes.push(format!(
            "{} keys have appends but no ok read",
            r.never_read.len()
        ));
    }
    if r.ok_count == 0 {
        r.valid = r.valid.and(Valid::Unknown);
        r.notes.push("no txn completed ok".into());
    }
    if history.truncated_tail {
        r.notes
            .push("history ends with a cut line (writer died); it was skipped".into());
    }
    Ok(r)
}

/// Finds one cycle per strongly connected component (iterative Tarjan, then a BFS
/// inside the component). Each step is (txn, edge kind out of it, key).
fn find_cycles<'a>(
    n: usize,
    edges: &[(usize, usize, &'static str, &'a str)],
) -> Vec<Vec<(usize, &'static str, &'a str)>> {
    let mut adj: Vec<Vec<(usize, &'static str, &str)>> = vec![Vec::new(); n];
    for &(a, b, kind, key) in edges {
        if let Some(out) = adj.get_mut(a) {
            out.push((b, kind, key));
        }
    }
    // Tarjan.
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![usize::MAX; n];
    let mut comps: Vec<Vec<usize>> = Vec::new();
    let mut counter = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut next)) = call.last_mut() {
            if let Some(&(w, _, _)) = adj[v].get(*next) {
                *next += 1;
                if index[w] == usize::MAX {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut c = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp[w] = comps.len();
                        c.push(w);
                        if w == v {
                            break;
                        }
                    }
                    comps.push(c);
                }
            }
        }
    }
    let mut cycles = Vec::new();
    for (ci, c) in comps.iter().enumerate() {
        if c.len() < 2 {
            continue;
        }
        let Some(&start) = c.first() else { continue };
        // BFS from start back to start inside the component.
        let mut prev: HashMap<usize, (usize, &'static str, &str)> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut found = false;
        while let Some(v) = queue.pop_front() {
            for &(w, kind, key) in &adj[v] {
                if comp[w] != ci {
                    continue;
                }
                if w == start {
                    prev.insert(start, (v, kind, key));
                    found = true;
                    break;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(w) {
                    e.insert((v, kind, key));
                    queue.push_back(w);
                }
            }
            if found {
                break;
            }
        }
        if !found {
            continue;
        }
        let mut steps = Vec::new();
        let mut cur = start;
        for _ in 0..=c.len() {
            let Some(&(p, kind, key)) = prev.get(&cur) else {
                break;
            };
            steps.push((p, kind, key));
            cur = p;
            if cur == start {
                break;
            }
        }
        steps.reverse();
        cycles.push(steps);
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::testkit::HistoryBuilder as B;

    trait TxnOps {
        fn line(&mut self, p: u64, t: &str, ops: serde_json::Value) -> &mut Self;
        fn txn(&mut self, p: u64, t: &str, ops: serde_json::Value) -> &mut Self;
        fn check(&self) -> ListAppendResult;
    }

    impl TxnOps for B {
        /// One txn line (invoke or completion).
        fn line(&mut self, p: u64, t: &str, ops: serde_json::Value) -> &mut B {
            self.op(p, t, "txn", json!({"ops": ops}))
        }
        /// A whole txn: invoke (reads null) then completion.
        fn txn(&mut self, p: u64, t: &str, ops: serde_json::Value) -> &mut B {
            let inv: Vec<serde_json::Value> = ops
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    if m[0] == "r" {
                        json!(["r", m[1], null])
                    } else {
                        m.clone()
                    }
                })
                .collect();
            self.line(p, "invoke", json!(inv));
            self.line(p, t, ops)
        }
        fn check(&self) -> ListAppendResult {
            check(&self.history()).unwrap()
        }
    }

    #[test]
    fn prefix_reads_are_valid() {
        let mut b = B::new();
        b.txn(0, "ok", json!([["append", "x", 1]]))
            .txn(1, "ok", json!([["r", "x", [1]], ["append", "x", 2]]))
            .txn(0, "ok", json!([["r", "x", [1, 2]]]));
        let r = b.check();
        assert_eq!(r.valid, Valid::True, "{r:?}");
    }

    #[test]
    fn each_anomaly_is_detected() {
        let base = || {
            let mut b = B::new();
            b.txn(0, "ok", json!([["append", "x", 1]]))
                .txn(0, "fail", json!([["append", "x", 2]]))
                .txn(0, "ok", json!([["append", "x", 3]]));
            b
        };
        let mut b = base();
        b.txn(1, "ok", json!([["r", "x", [1, 1, 3]]]));
        assert!(b.check().anomaly_types.contains(&"duplicate".to_string()));
        let mut b = base();
        b.txn(1, "ok", json!([["r", "x", [1, 3, 9]]]));
        assert_eq!(b.check().anomaly_types, vec!["garbage".to_string()]);
        let mut b = base();
        b.txn(1, "ok", json!([["r", "x", [1, 2, 3]]]));
        assert_eq!(b.check().anomaly_types, vec!["aborted-read".to_string()]);
        let mut b = base();
        b.txn(1, "ok", json!([["r", "x", [1, 3]]]))
            .txn(1, "ok", json!([["r", "x", [3, 1]]]));
        let r = b.check();
        assert!(
            r.anomaly_types.contains(&"incompatible-order".to_string()),
            "{r:?}"
        );
        assert_eq!(r.valid, Valid::False);
        let mut b = base();
        b.txn(1, "ok", json!([["r", "x", [1]]]));
        let r = b.check();
        assert_eq!(r.anomaly_types, vec!["lost-append".to_string()]);
        assert_eq!(r.lost_count, 1);
    }

    #[test]
    fn write_skew_cycle_is_found() {
        // T1 reads y empty and appends x; T2 reads x empty and appends y; both
        // concurrent. Later reads show both appends: rw T1→T2 and rw T2→T1.
        let mut b = B::new();
        b.line(0, "invoke", json!([["r", "y", null], ["append", "x", 1]]));
        b.line(1, "invoke", json!([["r", "x", null], ["append", "y", 1]]));
        b.line(0, "ok", json!([["r", "y", []], ["append", "x", 1]]));
        b.line(1, "ok", json!([["r", "x", []], ["append", "y", 1]]));
        b.txn(2, "ok", json!([["r", "x", [1]], ["r", "y", [1]]]));
        let r = b.check();
        assert_eq!(r.anomaly_types, vec!["cycle".to_string()], "{r:?}");
        assert_eq!(r.cycles[0].steps.len(), 2);
    }

    #[test]
    fn info_appends_may_appear_and_never_read_is_unknown() {
        let mut b = B::new();
        b.txn(0, "info", json!([["append", "x", 1]]))
            .txn(1, "ok", json!([["r", "x", [1]]]));
        assert_eq!(b.check().valid, Valid::True);
        let mut b = B::new();
        b.txn(0, "ok", json!([["append", "x", 1]]));
        let r = b.check();
        assert_eq!(r.valid, Valid::Unknown);
        assert_eq!(r.never_read, vec!["x".to_string()]);
        assert_eq!(check(&History::default()).unwrap().valid, Valid::Unknown);
    }

    #[test]
    fn malformed_txn_names_the_index() {
        let mut b = B::new();
        b.txn(0, "ok", json!([["append", "x", 1]]));
        b.line(1, "invoke", json!([["append", "x"]]));
        let h = b.history();
        assert_eq!(check(&h).unwrap_err().index, 2);
        let mut b = B::new();
        b.line(1, "invoke", json!([["r", "x", null]]));
        b.line(1, "ok", json!([["r", "x", "junk"]]));
        let h = b.history();
        assert_eq!(check(&h).unwrap_err().index, 1);
    }
}
