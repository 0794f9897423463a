//! The set checker (Jepsen's `set`, with `set-full`'s stale reads).
//!
//! Ops: `add` with value `{"key": K, "element": E}`; `read` (during the run) and
//! `final-read` (after healing) with invoke value `{"key": K}` and ok value
//! `{"key": K, "elements": [..]}`. Elements are unique per run.
//!
//! Per key, against the last ok `final-read` of that key:
//! - **lost**: an add that completed ok but is absent: the cluster acknowledged a write
//!   and then forgot it. Invalid.
//! - **unexpected**: an element present that no add ever attempted on that key. Invalid.
//! - **failed-present**: an element whose add completed `fail` (certainly did not
//!   happen) yet is present: the client's outcome taxonomy or the server lied. Invalid.
//! - **recovered**: an add that ended `info` (or never completed) and is present. Fine.
//! - **stale**: a `read` during the run that missed an element whose add had completed
//!   ok before the read was invoked. Reported; invalid only in linearizable mode.
//!
//! A key with attempted adds but no ok final read makes the verdict unknown.

use crate::history::{History, Op, OpType, OpValue};
use crate::verdict::Valid;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How many example elements each category lists in the result.
const EXAMPLES: usize = 20;

/// Options for the set checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetOptions {
    /// Count stale reads against validity.
    pub linearizable: bool,
}

/// One category of elements with its count and a few examples.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Elements {
    pub count: usize,
    pub examples: Vec<i64>,
}

impl Elements {
    fn from_set(set: &BTreeSet<i64>) -> Elements {
        Elements {
            count: set.len(),
            examples: set.iter().take(EXAMPLES).copied().collect(),
        }
    }
}

/// A stale read: which read, and which acknowledged elements it missed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StaleRead {
    pub key: String,
    pub index: u64,
    pub node: Option<String>,
    pub missing: Elements,
}

/// A lost add: the element, its key and the history index of its ok completion.
#[derive(Clone, Debug, PartialEq)]
pub struct LostAdd {
    pub key: String,
    pub element: i64,
    pub ack: u64,
}

/// A stale read with the ok completions of the adds it missed.
#[derive(Clone, Debug, PartialEq)]
pub struct StaleAll {
    pub key: String,
    /// History index of the read's completion.
    pub read: u64,
    pub missed_acks: Vec<u64>,
}

/// The set checker's result.
#[derive(Clone, Debug, Serialize)]
pub struct SetResult {
    pub valid: Valid,
    pub attempt_count: usize,
    pub acknowledged_count: usize,
    pub ok_count: usize,
    pub lost: Elements,
    pub unexpected: Elements,
    pub failed_present: Elements,
    pub recovered: Elements,
    pub stale_count: usize,
    pub stale: Vec<StaleRead>,
    /// Keys with adds but no ok final read.
    pub never_read: Vec<String>,
    pub keys: usize,
    pub notes: Vec<String>,
    /// Every lost add (the claims model attributes each one).
    #[serde(skip)]
    pub lost_all: Vec<LostAdd>,
    /// Every stale read.
    #[serde(skip)]
    pub stale_all: Vec<StaleAll>,
}

#[derive(Default)]
struct Attempt {
    outcome: Option<OpType>,
    /// History index of the ok completion, for stale-read ordering.
    ok_at: Option<u64>,
}

/// The fields set checkers read from an op value, borrowed as raw JSON so that a
/// million ops are judged without building a `serde_json::Value` tree for each.
/// JSON `null` and a missing field both read as `None`; neither is valid for any field.
#[derive(Default, serde::Deserialize)]
pub(crate) struct SetValue<'a> {
    #[serde(borrow, default)]
    key: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    element: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    elements: Option<&'a serde_json::value::RawValue>,
}

impl<'a> SetValue<'a> {
    /// The fields of an object value; anything else (including arrays, which serde
    /// would otherwise map positionally) has none.
    pub(crate) fn of(v: &'a OpValue) -> SetValue<'a> {
        if !v.raw().trim_start().starts_with('{') {
            return SetValue::default();
        }
        v.parse().unwrap_or_default()
    }

    /// `key` if it is a string.
    pub(crate) fn key(&self) -> Option<String> {
        serde_json::from_str(self.key?.get()).ok()
    }

    /// `element` if it is an integer that fits i64.
    pub(crate) fn element(&self) -> Option<i64> {
        serde_json::from_str(self.element?.get()).ok()
    }

    /// `elements` if it is an array of integers only, sorted and deduplicated.
    fn elements_strict(&self) -> Option<Vec<i64>> {
        let mut els: Vec<i64> = serde_json::from_str(self.elements?.get()).ok()?;
        els.sort_unstable();
        els.dedup();
        els.shrink_to_fit();
        Some(els)
    }

    /// The integers among `elements` if it is an array, sorted (duplicates kept).
    pub(crate) fn elements_lenient(&self) -> Option<Vec<i64>> {
        let raw: Vec<&serde_json::value::RawValue> =
            serde_json::from_str(self.elements?.get()).ok()?;
        let mut els: Vec<i64> = raw
            .iter()
            .filter_map(|e| serde_json::from_str(e.get()).ok())
            .collect();
        els.sort_unstable();
        Some(els)
    }
}

/// Judges a set-workload history.
pub fn check(history: &History, opts: SetOptions) -> SetResult {
    let mut notes = Vec::new();
    // key -> element -> attempt
    let mut attempts: BTreeMap<String, HashMap<i64, Attempt>> = BTreeMap::new();
    let mut final_reads: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    // (key, invoke index, completion) of ok reads during the run
    let mut reads: Vec<(String, u64, &Op, Vec<i64>)> = Vec::new();
    let mut malformed = 0usize;

    for (inv, done) in history.pairs() {
        match inv.f.as_str() {
            "add" => {
                let iv = SetValue::of(&inv.value);
                let (Some(key), Some(el)) = (iv.key(), iv.element()) else {
                    malformed += 1;
                    continue;
                };
                let per_key = match attempts.get_mut(&key) {
                    Some(m) => m,
                    None => attempts.entry(key).or_default(),
                };
                let a = per_key.entry(el).or_default();
                a.outcome = done.map(|d| d.kind);
                a.ok_at = done.filter(|d| d.kind == OpType::Ok).map(|d| d.index);
            }
            "read" | "final-read" => {
                let Some(done) = done.filter(|d| d.kind == OpType::Ok) else {
                    continue;
                };
                // Elements are kept as sorted `Vec`s (8 bytes each, not a BTreeSet's
                // ~40): every ok read is kept for the stale-read pass.
                let dv = SetValue::of(&done.value);
                let (Some(key), Some(els)) = (dv.key(), dv.elements_strict()) else {
                    malformed += 1;
                    continue;
                };
                if inv.f == "final-read" {
                    // The last ok final read of a key wins: it is the state after healing.
                    final_reads.insert(key, els);
                } else {
                    reads.push((key, inv.index, done, els));
                }
            }
            _ => {}
        }
    }
    if malformed > 0 {
        notes.push(format!("{malformed} malformed set ops ignored"));
    }
    if history.truncated_tail {
        notes.push("history ends with a cut line (writer died); it was skipped".into());
    }

    let mut lost = BTreeSet::new();
    let mut lost_all = Vec::new();
    let mut unexpected = BTreeSet::new();
    let mut failed_present = BTreeSet::new();
    let mut recovered = BTreeSet::new();
    let mut never_read = Vec::new();
    let mut attempt_count = 0;
    let mut ok_count = 0;
    let mut acknowledged_count = 0;

    let all_keys: BTreeSet<&String> = attempts.keys().chain(final_reads.keys()).collect();
    for key in &all_keys {
        let empty = HashMap::new();
        let att = attempts.get(*key).unwrap_or(&empty);
        attempt_count += att.len();
        acknowledged_count += att
            .values()
            .filter(|a| a.outcome == Some(OpType::Ok))
            .count();
        let Some(read) = final_reads.get(*key) else {
            if !att.is_empty() {
                never_read.push((*key).clone());
            }
            continue;
        };
        for (el, a) in att {
            let present = read.binary_search(el).is_ok();
            match (a.outcome, present) {
                (Some(OpType::Ok), true) => ok_count += 1,
                (Some(OpType::Ok), false) => {
                    lost.insert(*el);
                    if let Some(ack) = a.ok_at {
                        lost_all.push(LostAdd {
                            key: (*key).clone(),
                            element: *el,
                            ack,
                        });
                    }
                }
                (Some(OpType::Fail), true) => {
                    failed_present.insert(*el);
                }
                (Some(OpType::Info) | Some(OpType::Invoke) | None, true) => {
                    recovered.insert(*el);
                }
                _ => {}
            }
        }
        for el in read {
            if !att.contains_key(el) {
                unexpected.insert(*el);
            }
        }
    }

    let mut stale = Vec::new();
    let mut stale_all = Vec::new();
    for (key, invoked_at, done, els) in &reads {
        let Some(att) = attempts.get(key) else {
            continue;
        };
        let missing: BTreeSet<i64> = att
            .iter()
            .filter(|(el, a)| {
                a.ok_at.is_some_and(|at| at < *invoked_at) && els.binary_search(el).is_err()
            })
            .map(|(el, _)| *el)
            .collect();
        if !missing.is_empty() {
            stale_all.push(StaleAll {
                key: key.clone(),
                read: done.index,
                missed_acks: missing
                    .iter()
                    .filter_map(|el| att.get(el).and_then(|a| a.ok_at))
                    .collect(),
            });
            stale.push(StaleRead {
                key: key.clone(),
                index: done.index,
                node: done.node.clone(),
                missing: Elements::from_set(&missing),
            });
        }
    }

    let mut valid = Valid::True;
    if !lost.is_empty() || !unexpected.is_empty() || !failed_present.is_empty() {
        valid = Valid::False;
    }
    if opts.linearizable && !stale.is_empty() {
        valid = Valid::False;
    }
    if !never_read.is_empty() {
        valid = valid.and(Valid::Unknown);
        notes.push(format!(
            "{} keys have no ok final read; their adds are unjudged",
            never_read.len()
        ));
    }
    if attempt_count == 0 {
        valid = valid.and(Valid::Unknown);
        notes.push("no add was attempted".into());
    }

    SetResult {
        valid,
        attempt_count,
        acknowledged_count,
        ok_count,
        lost: Elements::from_set(&lost),
        unexpected: Elements::from_set(&unexpected),
        failed_present: Elements::from_set(&failed_present),
        recovered: Elements::from_set(&recovered),
        stale_count: stale.len(),
        stale: stale.into_iter().take(EXAMPLES).collect(),
        never_read,
        keys: all_keys.len(),
        notes,
        lost_all: {
            lost_all.sort_by_key(|l| l.ack);
            lost_all
        },
        stale_all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_value_fields_match_json_semantics() {
        let v: OpValue = json!({"key": "k\"1", "element": 3, "elements": [3, 1, "x", 1]}).into();
        let sv = SetValue::of(&v);
        assert_eq!(sv.key().as_deref(), Some("k\"1"));
        assert_eq!(sv.element(), Some(3));
        // One non-integer makes a read malformed for `set`, and is skipped by `set-full`.
        assert_eq!(sv.elements_strict(), None);
        assert_eq!(sv.elements_lenient(), Some(vec![1, 1, 3]));
        let ok: OpValue = json!({"key": "k", "elements": [3, 1, 1]}).into();
        assert_eq!(SetValue::of(&ok).elements_strict(), Some(vec![1, 3]));
        // Arrays and wrong types have no fields (serde would map arrays positionally).
        let arr: OpValue = json!(["k", 1, [1]]).into();
        assert_eq!(SetValue::of(&arr).key(), None);
        let wrong: OpValue = json!({"key": 1, "element": 1.5}).into();
        assert_eq!(SetValue::of(&wrong).key(), None);
        assert_eq!(SetValue::of(&wrong).element(), None);
    }

    use crate::testkit::HistoryBuilder;

    /// Set histories use 10 ns per line, so latencies are not all zero.
    fn builder() -> HistoryBuilder {
        HistoryBuilder::with_time_step(10)
    }

    trait SetOps {
        fn add(&mut self, p: u64, el: i64, outcome: &str) -> &mut Self;
        fn read(&mut self, p: u64, f: &str, els: &[i64]) -> &mut Self;
    }

    impl SetOps for HistoryBuilder {
        fn add(&mut self, p: u64, el: i64, outcome: &str) -> &mut Self {
            let v = json!({"key": "k", "element": el});
            self.op(p, "invoke", "add", v.clone());
            if !outcome.is_empty() {
                self.op(p, outcome, "add", v);
            }
            self
        }
        fn read(&mut self, p: u64, f: &str, els: &[i64]) -> &mut Self {
            self.op(p, "invoke", f, json!({"key": "k"}));
            self.op(p, "ok", f, json!({"key": "k", "elements": els}))
        }
    }

    #[test]
    fn all_present_is_valid() {
        let mut b = builder();
        b.add(0, 1, "ok")
            .add(1, 2, "ok")
            .read(2, "final-read", &[1, 2]);
        let r = check(&b.history(), SetOptions::default());
        assert_eq!(r.valid, Valid::True, "{r:?}");
        assert_eq!(r.ok_count, 2);
    }

    #[test]
    fn lost_ack_is_invalid() {
        let mut b = builder();
        b.add(0, 1, "ok")
            .add(1, 2, "ok")
            .read(2, "final-read", &[1]);
        let r = check(&b.history(), SetOptions::default());
        assert_eq!(r.valid, Valid::False);
        assert_eq!(r.lost.examples, vec![2]);
    }

    #[test]
    fn info_present_is_recovered_and_info_absent_is_fine() {
        let mut b = builder();
        b.add(0, 1, "info")
            .add(1, 2, "info")
            .add(2, 3, "")
            .read(3, "final-read", &[1, 3]);
        let r = check(&b.history(), SetOptions::default());
        assert_eq!(r.valid, Valid::True);
        assert_eq!(r.recovered.examples, vec![1, 3]);
    }

    #[test]
    fn unexpected_and_failed_present_are_invalid() {
        let mut b = builder();
        b.add(0, 1, "fail").read(1, "final-read", &[1]);
        let r = check(&b.history(), SetOptions::default());
        assert_eq!(r.valid, Valid::False);
        assert_eq!(r.failed_present.count, 1);
        let mut b = builder();
        b.add(0, 1, "ok").read(1, "final-read", &[1, 99]);
        let r = check(&b.history(), SetOptions::default());
        assert_eq!(r.valid, Valid::False);
        assert_eq!(r.unexpected.examples, vec![99]);
    }

    #[test]
    fn no_final_read_is_unknown() {
        let mut b = builder();
        b.add(0, 1, "ok");
        let r = check(&b.history(), SetOptions::default());
        assert_eq!(r.valid, Valid::Unknown);
        assert_eq!(r.never_read, vec!["k".to_string()]);
    }

    #[test]
    fn stale_read_reported_and_counts_only_when_linearizable() {
        let mut b = builder();
        b.add(0, 1, "ok")
            .read(1, "read", &[])
            .read(1, "final-read", &[1]);
        let r = check(&b.history(), SetOptions::default());
        assert_eq!(r.valid, Valid::True);
        assert_eq!(r.stale_count, 1);
        let r = check(&b.history(), SetOptions { linearizable: true });
        assert_eq!(r.valid, Valid::False);
    }

    #[test]
    fn concurrent_read_is_not_stale() {
        // The read is invoked before the add completes: missing it is legal.
        let mut b = builder();
        b.op(0, "invoke", "add", json!({"key":"k","element":1}));
        b.op(1, "invoke", "read", json!({"key":"k"}));
        b.op(0, "ok", "add", json!({"key":"k","element":1}));
        b.op(1, "ok", "read", json!({"key":"k","elements":[]}));
        b.read(1, "final-read", &[1]);
        let r = check(&b.history(), SetOptions::default());
        assert_eq!(r.stale_count, 0);
        assert_eq!(r.valid, Valid::True);
    }
}
