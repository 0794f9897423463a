//! The counter checker (Jepsen's `counter`, generalised to negative deltas).
//!
//! Ops: `add` `{"key", "delta": D}` (INCRBY); `read` / `final-read` `{"key"}` → ok
//! `{"key", "value": V}` (a missing key reads 0).
//!
//! For every ok read of a key, as of its interval [invoke, complete]:
//! - the adds that certainly happened before it: ok and completed before it was invoked;
//! - the adds that may have happened: not failed and invoked before it completed.
//!
//! The read must lie between `certain + (negative possible deltas)` and
//! `certain + (positive possible deltas)`. An info add may take effect any time after
//! its invocation, so it counts as possible for every later read.

use crate::history::{History, Op, OpType};
use crate::linear::MalformedOp;
use crate::verdict::Valid;
use serde::Serialize;
use std::collections::BTreeMap;

const EXAMPLES: usize = 20;

/// A read outside its bounds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BadRead {
    pub key: String,
    /// History index of the read's completion.
    pub index: u64,
    pub node: Option<String>,
    pub value: i64,
    pub lower: i128,
    pub upper: i128,
    /// Ok completions of the adds certainly applied before the read began (the writes
    /// whose loss a low read shows).
    #[serde(skip)]
    pub acks_before: Vec<u64>,
}

/// Per-key summary: the last ok read and the bounds of the final value.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct KeySummary {
    pub last_read: Option<i64>,
    /// Sum of acknowledged deltas.
    pub acknowledged: i128,
    /// Sum of attempted (not failed) deltas.
    pub attempted: i128,
}

/// The counter checker's result.
#[derive(Clone, Debug, Serialize)]
pub struct CounterResult {
    pub valid: Valid,
    pub add_count: usize,
    pub ok_add_count: usize,
    pub info_add_count: usize,
    pub read_count: usize,
    pub error_count: usize,
    pub errors: Vec<BadRead>,
    pub keys: BTreeMap<String, KeySummary>,
    pub notes: Vec<String>,
    /// Every bad read (the claims model attributes each one).
    #[serde(skip)]
    pub errors_all: Vec<BadRead>,
}

struct Add {
    invoke: u64,
    /// Ok completion index.
    ok_at: Option<u64>,
    delta: i128,
}

struct Read<'a> {
    invoke: u64,
    done: &'a Op,
    value: i64,
}

fn malformed(op: &Op, reason: String) -> MalformedOp {
    MalformedOp {
        index: op.index,
        f: op.f.clone(),
        reason,
    }
}

/// Sorted positions with prefix sums of (positive, negative) parts.
struct Prefix {
    at: Vec<u64>,
    pos: Vec<i128>,
    neg: Vec<i128>,
}

impl Prefix {
    fn new(mut items: Vec<(u64, i128)>) -> Prefix {
        items.sort_unstable_by_key(|(t, _)| *t);
        let (mut p, mut n) = (0i128, 0i128);
        let mut out = Prefix {
            at: Vec::with_capacity(items.len()),
            pos: Vec::with_capacity(items.len() + 1),
            neg: Vec::with_capacity(items.len() + 1),
        };
        out.pos.push(0);
        out.neg.push(0);
        for (t, d) in items {
            out.at.push(t);
            if d > 0 {
                p += d;
            } else {
                n += d;
            }
            out.pos.push(p);
            out.neg.push(n);
        }
        out
    }
    /// (positive sum, negative sum) of items strictly before `t`.
    fn before(&self, t: u64) -> (i128, i128) {
        let i = self.at.partition_point(|&x| x < t);
        (
            self.pos.get(i).copied().unwrap_or(0),
            self.neg.get(i).copied().unwrap_or(0),
        )
    }
}

/// Judges a counter-workload history.
pub fn check(history: &History) -> Result<CounterResult, MalformedOp> {
    let mut adds: BTreeMap<String, Vec<Add>> = BTreeMap::new();
    let mut reads: BTreeMap<String, Vec<Read>> = BTreeMap::new();
    let (mut add_count, mut ok_add_count, mut info_add_count) = (0, 0, 0);
    for (inv, done) in history.pairs() {
        if inv.kind != OpType::Invoke {
            continue;
        }
        let iv = inv.value.json();
        let key = iv
            .get("key")
            .and_then(|k| k.as_str())
            .ok_or_else(|| malformed(inv, format!("missing string \"key\" in {}", inv.value)))?;
        match inv.f.as_str() {
            "add" => {
                let delta = iv.get("delta").and_then(|d| d.as_i64()).ok_or_else(|| {
                    malformed(inv, format!("missing integer \"delta\" in {}", inv.value))
                })?;
                add_count += 1;
                let kind = done.map(|d| d.kind);
                match kind {
                    Some(OpType::Fail) => continue,
                    Some(OpType::Ok) => ok_add_count += 1,
                    _ => info_add_count += 1,
                }
                adds.entry(key.to_string()).or_default().push(Add {
                    invoke: inv.index,
                    ok_at: done.filter(|d| d.kind == OpType::Ok).map(|d| d.index),
                    delta: delta as i128,
                });
            }
            "read" | "final-read" => {
                let Some(done) = done.filter(|d| d.kind == OpType::Ok) else {
                    continue;
                };
                let dv = done.value.json();
                let value = match dv.get("value") {
                    Some(serde_json::Value::Null) => 0,
                    Some(v) => v.as_i64().ok_or_else(|| {
                        malformed(done, format!("read value {v} is not an integer"))
                    })?,
                    None => {
                        return Err(malformed(
                            done,
                            format!("ok read without \"value\": {}", done.value),
                        ))
                    }
                };
                reads.entry(key.to_string()).or_default().push(Read {
                    invoke: inv.index,
                    done,
                    value,
                });
            }
            other => return Err(malformed(inv, format!("unknown counter op {other:?}"))),
        }
    }

    let mut errors = Vec::new();
    let mut errors_all = Vec::new();
    let mut error_count = 0;
    let mut read_count = 0;
    let mut keys = BTreeMap::new();
    let all_keys: std::collections::BTreeSet<&String> = adds.keys().chain(reads.keys()).collect();
    for key in all_keys {
        let key_adds = adds.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let invoked = Prefix::new(key_adds.iter().map(|a| (a.invoke, a.delta)).collect());
        let certain = Prefix::new(
            key_adds
                .iter()
                .filter_map(|a| a.ok_at.map(|t| (t, a.delta)))
                .collect(),
        );
        let key_reads = reads.get(key).map(Vec::as_slice).unwrap_or(&[]);
        read_count += key_reads.len();
        for r in key_reads {
            let (cp, cn) = certain.before(r.invoke);
            let (ap, an) = invoked.before(r.done.index);
            let base = cp + cn;
            // Possible-but-uncertain adds: invoked before the read ended, minus the
            // certain ones (which were invoked earlier still).
            let lower = base + (an - cn);
            let upper = base + (ap - cp);
            let v = r.value as i128;
            if v < lower || v > upper {
                error_count += 1;
                let bad = BadRead {
                    key: key.clone(),
                    index: r.done.index,
                    node: r.done.node.clone(),
                    value: r.value,
                    lower,
                    upper,
                    acks_before: key_adds
                        .iter()
                        .filter_map(|a| a.ok_at.filter(|at| *at < r.invoke))
                        .collect(),
                };
                if errors.len() < EXAMPLES {
                    errors.push(bad.clone());
                }
                errors_all.push(bad);
            }
        }
        keys.insert(
            key.clone(),
            KeySummary {
                last_read: key_reads
                    .iter()
                    .max_by_key(|r| r.done.index)
                    .map(|r| r.value),
                acknowledged: key_adds
                    .iter()
                    .filter(|a| a.ok_at.is_some())
                    .map(|a| a.delta)
                    .sum(),
                attempted: key_adds.iter().map(|a| a.delta).sum(),
            },
        );
    }
    let mut notes = Vec::new();
    let mut valid = if error_count > 0 {
        Valid::False
    } else {
        Valid::True
    };
    if read_count == 0 {
        valid = valid.and(Valid::Unknown);
        notes.push("no ok read: nothing to judge".into());
    }
    if history.truncated_tail {
        notes.push("history ends with a cut line (writer died); it was skipped".into());
    }
    if keys.len() > 1000 {
        // Keep results.json readable on huge runs.
        keys = keys.into_iter().take(1000).collect();
        notes.push("per-key summary limited to 1000 keys".into());
    }
    Ok(CounterResult {
        valid,
        add_count,
        ok_add_count,
        info_add_count,
        read_count,
        error_count,
        errors,
        keys,
        notes,
        errors_all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::testkit::HistoryBuilder as B;

    trait CounterOps {
        fn add(&mut self, p: u64, t: &str, d: i64) -> &mut Self;
        fn read(&mut self, p: u64, v: i64) -> &mut Self;
        fn check(&self) -> CounterResult;
    }

    impl CounterOps for B {
        fn add(&mut self, p: u64, t: &str, d: i64) -> &mut B {
            self.op(p, t, "add", json!({"key": "c", "delta": d}))
        }
        fn read(&mut self, p: u64, v: i64) -> &mut B {
            self.op(p, "invoke", "read", json!({"key": "c"})).op(
                p,
                "ok",
                "read",
                json!({"key": "c", "value": v}),
            )
        }
        fn check(&self) -> CounterResult {
            check(&self.history()).unwrap()
        }
    }

    #[test]
    fn exact_sums_are_valid() {
        let mut b = B::new();
        b.read(0, 0).add(0, "invoke", 3).add(0, "ok", 3).read(1, 3);
        b.add(0, "invoke", -1).add(0, "ok", -1).read(1, 2);
        let r = b.check();
        assert_eq!(r.valid, Valid::True, "{r:?}");
        assert_eq!(r.keys["c"].acknowledged, 2);
    }

    #[test]
    fn read_below_acknowledged_is_invalid() {
        let mut b = B::new();
        b.add(0, "invoke", 3).add(0, "ok", 3).read(1, 2);
        let r = b.check();
        assert_eq!(r.valid, Valid::False);
        assert_eq!(r.errors[0].lower, 3);
        assert_eq!(r.errors[0].upper, 3);
    }

    #[test]
    fn read_above_attempted_is_invalid() {
        let mut b = B::new();
        b.add(0, "invoke", 3).add(0, "info", 3).read(1, 4);
        let r = b.check();
        assert_eq!(r.valid, Valid::False);
        assert_eq!((r.errors[0].lower, r.errors[0].upper), (0, 3));
    }

    #[test]
    fn info_and_concurrent_adds_widen_bounds() {
        let mut b = B::new();
        b.add(0, "invoke", 3).add(0, "info", 3);
        b.add(1, "invoke", 5);
        b.read(2, 8).read(2, 5).read(2, 0);
        b.add(1, "ok", 5);
        assert_eq!(b.check().valid, Valid::True);
        // After the add of 5 completed, 0 is too little.
        b.read(2, 3);
        assert_eq!(b.check().valid, Valid::False);
    }

    #[test]
    fn failed_add_counts_nowhere() {
        let mut b = B::new();
        b.add(0, "invoke", 3).add(0, "fail", 3).read(1, 3);
        assert_eq!(b.check().valid, Valid::False);
    }

    #[test]
    fn negative_deltas_lower_the_floor() {
        let mut b = B::new();
        b.add(0, "invoke", 10).add(0, "ok", 10);
        b.add(1, "invoke", -4);
        b.read(2, 6).read(2, 10);
        assert_eq!(b.check().valid, Valid::True);
        b.read(2, 5);
        assert_eq!(b.check().valid, Valid::False);
    }

    #[test]
    fn empty_and_only_failures_are_unknown() {
        assert_eq!(check(&History::default()).unwrap().valid, Valid::Unknown);
        let mut b = B::new();
        b.add(0, "invoke", 1).add(0, "fail", 1);
        b.op(1, "invoke", "read", json!({"key": "c"}))
            .op(1, "fail", "read", json!({"key": "c"}));
        assert_eq!(b.check().valid, Valid::Unknown);
    }

    #[test]
    fn huge_deltas_do_not_overflow() {
        let mut b = B::new();
        b.add(0, "invoke", i64::MAX).add(0, "ok", i64::MAX);
        b.add(1, "invoke", i64::MAX).add(1, "info", i64::MAX);
        b.read(2, i64::MAX);
        assert_eq!(b.check().valid, Valid::True);
    }

    #[test]
    fn malformed_ops_name_the_index() {
        let mut b = B::new();
        b.add(0, "invoke", 1).add(0, "ok", 1);
        b.op(1, "invoke", "add", json!({"key": "c", "delta": "x"}));
        let h = b.history();
        let e = check(&h).unwrap_err();
        assert_eq!(e.index, 2);
        let mut b = B::new();
        b.op(1, "invoke", "read", json!({"key": "c"}))
            .op(1, "ok", "read", json!({"key": "c"}));
        let h = b.history();
        assert_eq!(check(&h).unwrap_err().index, 1);
    }
}
