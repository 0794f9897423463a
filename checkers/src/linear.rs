//! Linearizability checker for the register workload (read / write / compare-and-set).
//!
//! Wing & Gong's search with Lowe's just-in-time linearization and memoization (the
//! set of linearized ops as a bitset plus the model state), as Porcupine does it. The
//! register is P-compositional, so each key is checked alone, keys in parallel.
//!
//! Ops: `write` `{"key", "value": V}`, `read` `{"key"}` → ok `{"key", "value": V|null}`,
//! `cas` `{"key", "from": A, "to": B}`. Values are integers; a missing key reads null.
//!
//! - `fail` ops certainly did not happen and are dropped.
//! - `info` (or never completed) writes and cas may take effect any time after their
//!   invocation, or never: their return is +infinity and the search may leave them out.
//! - `info` reads taught us nothing and are dropped.
//!
//! A shared time budget turns unfinished keys into `unknown`. On failure the evidence
//! names the key, the smallest window of ops that cannot be linearized whatever state
//! the key had before it, and the longest partial linearization the search found.

use crate::history::{History, Op, OpType};
use crate::verdict::Valid;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failing keys carry full evidence in the result.
const EVIDENCE_KEYS: usize = 5;
/// How many search steps run between two budget checks.
const BUDGET_CHECK_EVERY: u64 = 1 << 12;

/// A malformed register op: which history op, and why.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("register op at history index {index} (f={f}): {reason}")]
pub struct MalformedOp {
    pub index: u64,
    pub f: String,
    pub reason: String,
}

/// Options for the linearizability checker.
#[derive(Clone, Copy, Debug)]
pub struct LinearOptions {
    /// Wall-clock budget for the whole check; keys not finished in it are unknown.
    pub budget: Duration,
    /// Worker threads (0: available parallelism).
    pub threads: usize,
}

impl Default for LinearOptions {
    fn default() -> Self {
        LinearOptions {
            budget: Duration::from_secs(60),
            threads: 0,
        }
    }
}

/// A register operation as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum RegOp {
    /// A read that returned this value (None: the key did not exist).
    Read {
        value: Option<i64>,
    },
    Write {
        value: i64,
    },
    Cas {
        from: i64,
        to: i64,
    },
}

impl RegOp {
    /// The register model: the new state, or None if the op cannot happen in `state`.
    pub fn step(self, state: Option<i64>) -> Option<Option<i64>> {
        match self {
            RegOp::Read { value } => (value == state).then_some(state),
            RegOp::Write { value } => Some(Some(value)),
            RegOp::Cas { from, to } => (state == Some(from)).then_some(Some(to)),
        }
    }

    fn written(self) -> Option<i64> {
        match self {
            RegOp::Read { .. } => None,
            RegOp::Write { value } => Some(value),
            RegOp::Cas { to, .. } => Some(to),
        }
    }
}

/// One op of one key, with its real-time interval in history positions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub op: RegOp,
    /// History index of the invocation.
    pub invoke: u64,
    /// History index of the ok completion; None for info / never completed.
    pub complete: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<u64>,
}

/// Why a key could not be linearized.
#[derive(Clone, Debug, Serialize)]
pub struct KeyEvidence {
    pub key: String,
    pub ops: usize,
    /// The smallest window that cannot be linearized from any state the key could
    /// have had when the window opened (`initial-states`).
    pub window: Vec<Entry>,
    pub initial_states: Vec<Option<i64>>,
    /// The longest prefix of a linearization found, in linearization order.
    pub longest_linearization: Vec<Entry>,
    /// The ok op that no linearization of the ops before it can explain.
    pub failed_at: Option<Entry>,
}

/// The checker's result.
#[derive(Clone, Debug, Serialize)]
pub struct LinearResult {
    pub valid: Valid,
    pub keys: usize,
    pub ops: usize,
    pub ok_ops: usize,
    pub info_ops: usize,
    pub invalid_key_count: usize,
    pub invalid_keys: Vec<String>,
    pub unknown_keys: Vec<String>,
    pub evidence: Vec<KeyEvidence>,
    pub elapsed_ms: u64,
    pub notes: Vec<String>,
}

fn int_field(v: &serde_json::Value, field: &str) -> Result<i64, String> {
    v.get(field)
        .and_then(|x| x.as_i64())
        .ok_or_else(|| format!("missing integer \"{field}\" in {v}"))
}

fn parse_op(inv: &Op, done: Option<&Op>) -> Result<Option<(String, RegOp)>, MalformedOp> {
    let bad = |reason: String| MalformedOp {
        index: inv.index,
        f: inv.f.clone(),
        reason,
    };
    let iv = inv.value.json();
    let key = iv
        .get("key")
        .and_then(|k| k.as_str())
        .ok_or_else(|| bad(format!("missing string \"key\" in {}", inv.value)))?
        .to_string();
    let outcome = done.map(|d| d.kind);
    if outcome == Some(OpType::Fail) {
        return Ok(None);
    }
    let op = match inv.f.as_str() {
        "read" | "final-read" => {
            // A read that did not complete ok constrains nothing.
            let Some(d) = done.filter(|d| d.kind == OpType::Ok) else {
                return Ok(None);
            };
            let dv = d.value.json();
            let v = dv
                .get("value")
                .ok_or_else(|| bad(format!("ok read without \"value\": {}", d.value)))?;
            let value = match v {
                serde_json::Value::Null => None,
                other => Some(
                    other
                        .as_i64()
                        .ok_or_else(|| bad(format!("read value {other} is not an integer")))?,
                ),
            };
            RegOp::Read { value }
        }
        "write" => RegOp::Write {
            value: int_field(&iv, "value").map_err(bad)?,
        },
        "cas" => RegOp::Cas {
            from: int_field(&iv, "from").map_err(bad)?,
            to: int_field(&iv, "to").map_err(bad)?,
        },
        other => return Err(bad(format!("unknown register op {other:?}"))),
    };
    Ok(Some((key, op)))
}

/// Groups a history's register ops by key. Non-register ops (e.g. `final-read` of other
/// workloads) are errors: this checker must not silently judge the wrong workload.
pub fn entries_by_key(history: &History) -> Result<BTreeMap<String, Vec<Entry>>, MalformedOp> {
    let mut by_key: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for (inv, done) in history.pairs() {
        if inv.kind != OpType::Invoke {
            continue;
        }
        let Some((key, op)) = parse_op(inv, done)? else {
            continue;
        };
        let complete = done.filter(|d| d.kind == OpType::Ok).map(|d| d.index);
        if let Some(c) = complete {
            if c < inv.index {
                return Err(MalformedOp {
                    index: c,
                    f: inv.f.clone(),
                    reason: format!("completes before its invocation {}", inv.index),
                });
            }
        }
        let process = match inv.process {
            crate::history::Process::Client(p) => Some(p),
            crate::history::Process::Nemesis => None,
        };
        by_key.entry(key).or_default().push(Entry {
            op,
            invoke: inv.index,
            complete,
            process,
        });
    }
    Ok(by_key)
}

/// How a search ended.
#[derive(Debug, PartialEq)]
pub enum SearchOutcome {
    Linearizable,
    /// Not linearizable; the longest partial linearization (indices into the entries).
    NotLinearizable {
        longest: Vec<usize>,
    },
    /// Budget exhausted.
    Unknown,
}

/// A fixed-size bitset over a key's entries.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)].into_boxed_slice())
    }
    fn set(&mut self, i: usize, on: bool) {
        if let Some(w) = self.0.get_mut(i / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }
}

/// The cancellation shared by all searches of one check.
pub struct Budget {
    deadline: Instant,
    expired: AtomicBool,
}

impl Budget {
    pub fn new(budget: Duration) -> Budget {
        Budget {
            deadline: Instant::now() + budget,
            expired: AtomicBool::new(false),
        }
    }
    fn expired(&self) -> bool {
        if self.expired.load(Ordering::Relaxed) {
            return true;
        }
        if Instant::now() >= self.deadline {
            self.expired.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

const NIL: usize = usize::MAX;

/// Searches for a linearization of `entries` starting in `init`. Entries with
/// `complete == None` may be left out.
pub fn search(entries: &[Entry], init: Option<i64>, budget: &Budget) -> SearchOutcome {
    let n = entries.len();
    // Events: 2i = call of entry i, 2i+1 = its return. Sorted by history position;
    // open returns go last (they never force anything).
    let mut events: Vec<usize> = (0..2 * n).collect();
    let pos = |ev: usize| -> (u64, usize) {
        let Some(e) = entries.get(ev / 2) else {
            return (u64::MAX, ev);
        };
        if ev.is_multiple_of(2) {
            (e.invoke, ev)
        } else {
            (e.complete.unwrap_or(u64::MAX), ev)
        }
    };
    events.sort_by_key(|&ev| pos(ev));
    // A doubly linked list over event ids, with a head sentinel at id 2n.
    let head = 2 * n;
    let mut next = vec![NIL; 2 * n + 1];
    let mut prev = vec![NIL; 2 * n + 1];
    let mut last = head;
    for &ev in &events {
        next[last] = ev;
        prev[ev] = last;
        last = ev;
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, ev: usize| {
        let (p, nx) = (prev[ev], next[ev]);
        next[p] = nx;
        if nx != NIL {
            prev[nx] = p;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, ev: usize| {
        let (p, nx) = (prev[ev], next[ev]);
        next[p] = ev;
        if nx != NIL {
            prev[nx] = ev;
        }
    };

    let mut state = init;
    let mut linearized = Bits::new(n);
    let mut cache: HashSet<(Bits, Option<i64>)> = HashSet::new();
    // (entry, state before it)
    let mut stack: Vec<(usize, Option<i64>)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut cursor = next[head];
    let mut steps = 0u64;
    loop {
        steps += 1;
        if steps.is_multiple_of(BUDGET_CHECK_EVERY) && budget.expired() {
            return SearchOutcome::Unknown;
        }
        if cursor == NIL {
            return SearchOutcome::Linearizable;
        }
        let i = cursor / 2;
        let Some(entry) = entries.get(i) else {
            return SearchOutcome::Unknown;
        };
        if cursor.is_multiple_of(2) {
            if let Some(new_state) = entry.op.step(state) {
                let mut bits = linearized.clone();
                bits.set(i, true);
                if cache.insert((bits.clone(), new_state)) {
                    stack.push((i, state));
                    state = new_state;
                    linearized = bits;
                    unlink(&mut next, &mut prev, 2 * i);
                    unlink(&mut next, &mut prev, 2 * i + 1);
                    if stack.len() > longest.len() {
                        longest = stack.iter().map(|(e, _)| *e).collect();
                    }
                    cursor = next[head];
                    continue;
                }
            }
            cursor = next[cursor];
        } else if entry.complete.is_none() {
            // Only open returns remain: every completed op is linearized; the rest
            // may never have taken effect.
            return SearchOutcome::Linearizable;
        } else {
            // An op returned before being linearized: undo the last choice.
            let Some((j, before)) = stack.pop() else {
                return SearchOutcome::NotLinearizable { longest };
            };
            state = before;
            linearized.set(j, false);
            relink(&mut next, &mut prev, 2 * j + 1);
            relink(&mut next, &mut prev, 2 * j);
            cursor = next[2 * j];
        }
    }
}

/// Searches from each candidate initial state; linearizable if any works.
fn search_any(entries: &[Entry], inits: &[Option<i64>], budget: &Budget) -> SearchOutcome {
    let mut first_fail = None;
    for &init in inits {
        match search(entries, init, budget) {
            SearchOutcome::Linearizable => return SearchOutcome::Linearizable,
            SearchOutcome::Unknown => return SearchOutcome::Unknown,
            f @ SearchOutcome::NotLinearizable { .. } => {
                first_fail.get_or_insert(f);
            }
        }
    }
    first_fail.unwrap_or(SearchOutcome::Linearizable)
}

/// The entries as they stood when history position `cut` was reached: ops invoked
/// later are gone, ops completing later are still open.
fn prefix(entries: &[Entry], cut: u64) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| e.invoke <= cut)
        .map(|e| Entry {
            complete: e.complete.filter(|c| *c <= cut),
            ..e.clone()
        })
        .collect()
}

/// (window ops, possible initial states, the op at which the prefix fails)
type Window = (Vec<Entry>, Vec<Option<i64>>, Option<Entry>);

/// Finds the smallest failing window of a non-linearizable key. Returns (window,
/// initial states, the op at which the prefix fails), or None on budget exhaustion.
fn smallest_window(entries: &[Entry], budget: &Budget) -> Option<Window> {
    // 1. The shortest failing prefix, cut at an ok completion (failure is monotone
    //    in the cut: more ops never help).
    let mut cuts: Vec<u64> = entries.iter().filter_map(|e| e.complete).collect();
    cuts.sort_unstable();
    let (mut lo, mut hi) = (0usize, cuts.len().checked_sub(1)?);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let cut = *cuts.get(mid)?;
        match search(&prefix(entries, cut), None, budget) {
            SearchOutcome::Unknown => return None,
            SearchOutcome::Linearizable => lo = mid + 1,
            SearchOutcome::NotLinearizable { .. } => hi = mid,
        }
    }
    let cut = *cuts.get(lo)?;
    let pre = prefix(entries, cut);
    let failed_at = entries.iter().find(|e| e.complete == Some(cut)).cloned();
    // 2. Drop ops from the left at quiescent points: positions before which every
    //    completed op has returned and after which every kept op was invoked (open ops
    //    are always kept, and what they wrote joins the possible initial states). The
    //    key then holds one of the values written before, so the window is judged
    //    from each.
    let mut starts: Vec<u64> = pre
        .iter()
        .filter(|e| e.complete.is_some())
        .map(|e| e.invoke)
        .filter(|&s| {
            pre.iter()
                .all(|e| e.complete.is_none() || e.complete < Some(s) || e.invoke >= s)
        })
        .collect();
    starts.sort_unstable();
    starts.dedup();
    let window_at = |s: u64| -> (Vec<Entry>, Vec<Option<i64>>) {
        let mut inits = vec![None];
        let mut kept = Vec::new();
        for e in &pre {
            let before = e.complete.is_some_and(|c| c < s);
            if before || (e.complete.is_none() && e.invoke < s) {
                if let Some(w) = e.op.written() {
                    if !inits.contains(&Some(w)) {
                        inits.push(Some(w));
                    }
                }
            }
            if !before {
                kept.push(e.clone());
            }
        }
        (kept, inits)
    };
    // The latest start that still fails (monotone: a later start keeps fewer ops and
    // allows more initial states).
    let (mut lo, mut hi) = (0usize, starts.len());
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        let s = *starts.get(mid)?;
        let (w, inits) = window_at(s);
        match search_any(&w, &inits, budget) {
            SearchOutcome::Unknown => return None,
            SearchOutcome::Linearizable => hi = mid,
            SearchOutcome::NotLinearizable { .. } => lo = mid,
        }
    }
    match starts.get(lo) {
        Some(&s) => {
            let (w, inits) = window_at(s);
            // The first start need not fail from every state; fall back to the prefix.
            if matches!(
                search_any(&w, &inits, budget),
                SearchOutcome::NotLinearizable { .. }
            ) {
                return Some((w, inits, failed_at));
            }
            Some((pre, vec![None], failed_at))
        }
        None => Some((pre, vec![None], failed_at)),
    }
}

enum KeyVerdict {
    Ok,
    Bad(Box<KeyEvidence>),
    Unknown,
}

fn check_key(key: &str, entries: &[Entry], budget: &Budget, evidence: bool) -> KeyVerdict {
    match search(entries, None, budget) {
        SearchOutcome::Linearizable => KeyVerdict::Ok,
        SearchOutcome::Unknown => KeyVerdict::Unknown,
        SearchOutcome::NotLinearizable { longest } => {
            let longest_linearization = longest
                .iter()
                .filter_map(|&i| entries.get(i).cloned())
                .collect();
            let (window, initial_states, failed_at) = if evidence {
                smallest_window(entries, budget).unwrap_or_default()
            } else {
                Default::default()
            };
            KeyVerdict::Bad(Box::new(KeyEvidence {
                key: key.to_string(),
                ops: entries.len(),
                window,
                initial_states,
                longest_linearization,
                failed_at,
            }))
        }
    }
}

/// Judges a register-workload history.
pub fn check(history: &History, opts: LinearOptions) -> Result<LinearResult, MalformedOp> {
    let t0 = Instant::now();
    let by_key = entries_by_key(history)?;
    let keys: Vec<(&String, &Vec<Entry>)> = by_key.iter().collect();
    let budget = Budget::new(opts.budget);
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    }
    .clamp(1, keys.len().max(1));
    let next = AtomicUsize::new(0);
    let verdicts: Mutex<Vec<(usize, KeyVerdict)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((key, entries)) = keys.get(k) else {
                        break;
                    };
                    // Evidence comes later, for the first few bad keys in key order, so
                    // that it does not depend on thread timing.
                    let v = check_key(key, entries, &budget, false);
                    mine.push((k, v));
                }
                if let Ok(mut all) = verdicts.lock() {
                    all.extend(mine);
                }
            });
        }
    });
    let mut verdicts = verdicts.into_inner().unwrap_or_default();
    verdicts.sort_by_key(|(k, _)| *k);

    let mut invalid_keys = Vec::new();
    let mut unknown_keys = Vec::new();
    let mut evidence = Vec::new();
    for (k, v) in verdicts {
        let key = keys
            .get(k)
            .map(|(key, _)| (*key).clone())
            .unwrap_or_default();
        match v {
            KeyVerdict::Ok => {}
            KeyVerdict::Unknown => unknown_keys.push(key),
            KeyVerdict::Bad(mut ev) => {
                invalid_keys.push(key);
                if evidence.len() < EVIDENCE_KEYS {
                    if let Some((_, entries)) = keys.get(k) {
                        if let Some((w, inits, at)) = smallest_window(entries, &budget) {
                            ev.window = w;
                            ev.initial_states = inits;
                            ev.failed_at = at;
                        }
                    }
                    evidence.push(*ev);
                }
            }
        }
    }
    let mut notes = Vec::new();
    let ops: usize = by_key.values().map(Vec::len).sum();
    let ok_ops = by_key
        .values()
        .flatten()
        .filter(|e| e.complete.is_some())
        .count();
    let mut valid = if invalid_keys.is_empty() {
        Valid::True
    } else {
        Valid::False
    };
    if !unknown_keys.is_empty() {
        valid = valid.and(Valid::Unknown);
        notes.push(format!(
            "time budget of {:?} ran out with {} keys unchecked",
            opts.budget,
            unknown_keys.len()
        ));
    }
    if ops == 0 {
        valid = valid.and(Valid::Unknown);
        notes.push("no register op took or may have taken effect".into());
    }
    if history.truncated_tail {
        notes.push("history ends with a cut line (writer died); it was skipped".into());
    }
    Ok(LinearResult {
        valid,
        keys: by_key.len(),
        ops,
        ok_ops,
        info_ops: ops - ok_ops,
        invalid_key_count: invalid_keys.len(),
        invalid_keys: invalid_keys.into_iter().take(100).collect(),
        unknown_keys: unknown_keys.into_iter().take(100).collect(),
        evidence,
        elapsed_ms: t0.elapsed().as_millis() as u64,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Builds histories line by line: `inv(p, f, v)` then `done(p, type, f, v)`.
    use crate::testkit::HistoryBuilder as B;

    trait RegisterOps {
        fn w(&mut self, p: u64, t: &str, v: i64) -> &mut Self;
        fn r(&mut self, p: u64, t: &str, v: Option<i64>) -> &mut Self;
        fn cas(&mut self, p: u64, t: &str, from: i64, to: i64) -> &mut Self;
        fn check(&self) -> LinearResult;
    }

    impl RegisterOps for B {
        fn w(&mut self, p: u64, t: &str, v: i64) -> &mut B {
            self.op(p, t, "write", json!({"key": "k", "value": v}))
        }
        fn r(&mut self, p: u64, t: &str, v: Option<i64>) -> &mut B {
            if t == "invoke" {
                self.op(p, t, "read", json!({"key": "k"}))
            } else {
                self.op(p, t, "read", json!({"key": "k", "value": v}))
            }
        }
        fn cas(&mut self, p: u64, t: &str, from: i64, to: i64) -> &mut B {
            self.op(p, t, "cas", json!({"key": "k", "from": from, "to": to}))
        }
        fn check(&self) -> LinearResult {
            check(&self.history(), LinearOptions::default()).unwrap()
        }
    }

    #[test]
    fn sequential_write_read_is_valid() {
        let mut b = B::new();
        b.r(0, "invoke", None).r(0, "ok", None);
        b.w(0, "invoke", 1).w(0, "ok", 1);
        b.r(1, "invoke", None).r(1, "ok", Some(1));
        let r = b.check();
        assert_eq!(r.valid, Valid::True, "{r:?}");
        assert_eq!(r.ops, 3);
    }

    #[test]
    fn stale_read_after_write_is_invalid_with_evidence() {
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "ok", 1);
        b.w(0, "invoke", 2).w(0, "ok", 2);
        b.r(1, "invoke", None).r(1, "ok", Some(1));
        let r = b.check();
        assert_eq!(r.valid, Valid::False);
        assert_eq!(r.invalid_keys, vec!["k".to_string()]);
        let ev = &r.evidence[0];
        assert_eq!(ev.key, "k");
        // The read of 1 cannot follow the write of 2; the write of 1 drops out of
        // the window, its value becomes a possible initial state.
        assert_eq!(ev.failed_at.as_ref().map(|e| e.invoke), Some(4));
        assert_eq!(ev.window.len(), 2, "{ev:?}");
        assert!(ev.initial_states.contains(&Some(1)));
        assert_eq!(ev.longest_linearization.len(), 2);
    }

    #[test]
    fn read_of_never_written_value_is_invalid() {
        let mut b = B::new();
        b.r(0, "invoke", None).r(0, "ok", Some(7));
        assert_eq!(b.check().valid, Valid::False);
    }

    #[test]
    fn concurrent_write_may_be_seen_or_not() {
        let mut b = B::new();
        b.w(0, "invoke", 1);
        b.r(1, "invoke", None).r(1, "ok", Some(1));
        b.r(2, "invoke", None).r(2, "ok", None);
        b.w(0, "ok", 1);
        // Reads see 1 then nil while the write is in flight: not linearizable,
        // because once the write took effect nil never comes back.
        assert_eq!(b.check().valid, Valid::False);
        let mut b = B::new();
        b.w(0, "invoke", 1);
        b.r(2, "invoke", None).r(2, "ok", None);
        b.r(1, "invoke", None).r(1, "ok", Some(1));
        b.w(0, "ok", 1);
        assert_eq!(b.check().valid, Valid::True);
    }

    #[test]
    fn info_write_may_take_effect_late_or_never() {
        // Seen long after the writer gave up.
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "info", 1);
        b.r(1, "invoke", None).r(1, "ok", None);
        b.r(1, "invoke", None).r(1, "ok", Some(1));
        assert_eq!(b.check().valid, Valid::True);
        // Never seen.
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "info", 1);
        b.r(1, "invoke", None).r(1, "ok", None);
        assert_eq!(b.check().valid, Valid::True);
        // Never completed at all (cut history) behaves the same.
        let mut b = B::new();
        b.w(0, "invoke", 1);
        b.r(1, "invoke", None).r(1, "ok", Some(1));
        assert_eq!(b.check().valid, Valid::True);
        // But it cannot take effect before its invocation.
        let mut b = B::new();
        b.r(1, "invoke", None).r(1, "ok", Some(1));
        b.w(0, "invoke", 1).w(0, "info", 1);
        assert_eq!(b.check().valid, Valid::False);
    }

    #[test]
    fn concurrent_info_ops_take_effect_at_most_once_each() {
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "info", 1);
        b.w(1, "invoke", 2).w(1, "info", 2);
        b.r(2, "invoke", None).r(2, "ok", Some(2));
        b.r(2, "invoke", None).r(2, "ok", Some(1));
        assert_eq!(b.check().valid, Valid::True);
        // 2, 1, 2 would need the write of 2 twice.
        b.r(2, "invoke", None).r(2, "ok", Some(2));
        assert_eq!(b.check().valid, Valid::False);
    }

    #[test]
    fn failed_ops_never_happen() {
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "fail", 1);
        b.r(1, "invoke", None).r(1, "ok", Some(1));
        assert_eq!(b.check().valid, Valid::False);
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "fail", 1);
        b.r(1, "invoke", None).r(1, "fail", None);
        let r = b.check();
        // Only failures: nothing to judge.
        assert_eq!(r.valid, Valid::Unknown);
        assert_eq!(r.ops, 0);
    }

    #[test]
    fn cas_model() {
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "ok", 1);
        b.cas(0, "invoke", 1, 2).cas(0, "ok", 1, 2);
        b.r(0, "invoke", None).r(0, "ok", Some(2));
        assert_eq!(b.check().valid, Valid::True);
        // A cas from a value the register never held cannot succeed.
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "ok", 1);
        b.cas(0, "invoke", 5, 2).cas(0, "ok", 5, 2);
        assert_eq!(b.check().valid, Valid::False);
        // A failed cas is dropped.
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "ok", 1);
        b.cas(0, "invoke", 5, 2).cas(0, "fail", 5, 2);
        b.r(0, "invoke", None).r(0, "ok", Some(1));
        assert_eq!(b.check().valid, Valid::True);
    }

    #[test]
    fn empty_history_is_unknown() {
        let h = History::default();
        let r = check(&h, LinearOptions::default()).unwrap();
        assert_eq!(r.valid, Valid::Unknown);
    }

    #[test]
    fn keys_are_independent() {
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "ok", 1);
        b.op(1, "invoke", "read", json!({"key": "other"}));
        b.op(1, "ok", "read", json!({"key": "other", "value": null}));
        assert_eq!(b.check().valid, Valid::True);
    }

    #[test]
    fn malformed_ops_name_the_index() {
        let mut b = B::new();
        b.w(0, "invoke", 1).w(0, "ok", 1);
        b.op(1, "invoke", "write", json!({"key": "k", "value": "x"}));
        let h = b.history();
        let e = check(&h, LinearOptions::default()).unwrap_err();
        assert_eq!(e.index, 2);
        assert!(e.to_string().contains("history index 2"), "{e}");
        let mut b = B::new();
        b.op(1, "invoke", "read", json!({"key": "k"}));
        b.op(1, "ok", "read", json!({"key": "k", "value": [1]}));
        let h = b.history();
        assert!(check(&h, LinearOptions::default()).is_err());
        let mut b = B::new();
        b.op(1, "invoke", "frob", json!({"key": "k"}));
        let h = b.history();
        assert!(check(&h, LinearOptions::default()).is_err());
    }

    #[test]
    fn huge_values_are_fine() {
        let mut b = B::new();
        b.w(0, "invoke", i64::MAX).w(0, "ok", i64::MAX);
        b.r(0, "invoke", None).r(0, "ok", Some(i64::MAX));
        b.cas(0, "invoke", i64::MAX, i64::MIN)
            .cas(0, "ok", i64::MAX, i64::MIN);
        b.r(0, "invoke", None).r(0, "ok", Some(i64::MIN));
        assert_eq!(b.check().valid, Valid::True);
    }

    #[test]
    fn zero_budget_is_unknown_not_wrong() {
        // Concurrent info writes: a search space of subsets and orders.
        let mut b = B::new();
        for p in 0..12 {
            b.w(p, "invoke", p as i64);
        }
        for p in 0..12 {
            b.w(p, "info", p as i64);
        }
        for v in 0..12 {
            b.r(100, "invoke", None).r(100, "ok", Some(11 - v));
        }
        for _ in 0..2000 {
            b.r(100, "invoke", None).r(100, "ok", Some(0));
        }
        let h = b.history();
        let r = check(
            &h,
            LinearOptions {
                budget: Duration::ZERO,
                threads: 1,
            },
        )
        .unwrap();
        assert_eq!(r.valid, Valid::Unknown);
        assert_eq!(r.unknown_keys, vec!["k".to_string()]);
        let r = check(&h, LinearOptions::default()).unwrap();
        assert_eq!(r.valid, Valid::True);
    }

    #[test]
    fn more_than_64_ops_on_a_key() {
        // The bitset crosses a word boundary; a few writes overlap a read.
        let mut b = B::new();
        for v in 0..70 {
            b.w(0, "invoke", v).w(0, "ok", v);
        }
        for p in 1..6 {
            b.w(p, "invoke", p as i64 + 100);
        }
        b.r(100, "invoke", None).r(100, "ok", Some(103));
        for p in 1..6 {
            b.w(p, "ok", p as i64 + 100);
        }
        b.r(100, "invoke", None).r(100, "ok", Some(103));
        assert_eq!(b.check().valid, Valid::True);
        b.r(100, "invoke", None).r(100, "ok", Some(69));
        assert_eq!(b.check().valid, Valid::False);
    }
}
