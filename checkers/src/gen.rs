//! Synthetic histories from sequential models, for property tests and benchmarks.
//!
//! Each generator simulates `concurrency` client processes. Every op gets an interval
//! [invoke, return] and a linearization point inside it; the model is applied in the
//! order of those points, so the resulting history is linearizable by construction.
//! Some ops end `info` (their process then retires and a fresh process id takes over);
//! an info write took effect or not at random.

use crate::history::{History, Op, OpType, Process};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BinaryHeap};

/// SplitMix64: a tiny deterministic generator (the checkers crate has no rand).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (0 when n == 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub struct GenOptions {
    pub seed: u64,
    /// Client operations (each is an invoke line plus, usually, a completion line).
    pub ops: usize,
    pub keys: usize,
    pub concurrency: usize,
    /// Share of ops ending `info`.
    pub info_rate: f64,
    /// Share of ops that are reads.
    pub read_rate: f64,
    /// Mean op duration relative to the mean gap between a process's ops; larger
    /// means more overlap.
    pub overlap: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            seed: 1,
            ops: 1000,
            keys: 4,
            concurrency: 5,
            info_rate: 0.02,
            read_rate: 0.4,
            overlap: 4,
        }
    }
}

/// One simulated op before its effect is known.
struct Slot {
    process: u64,
    invoke: u64,
    lin: u64,
    ret: u64,
    key: usize,
    info: bool,
}

/// Lays out `ops` intervals over `concurrency` processes.
fn schedule(rng: &mut Rng, o: &GenOptions) -> Vec<Slot> {
    let mut heap: BinaryHeap<std::cmp::Reverse<(u64, u64)>> = (0..o.concurrency.max(1) as u64)
        .map(|p| std::cmp::Reverse((0, p)))
        .collect();
    let conc = o.concurrency.max(1) as u64;
    let mut slots = Vec::with_capacity(o.ops);
    while slots.len() < o.ops {
        let Some(std::cmp::Reverse((free, p))) = heap.pop() else {
            break;
        };
        let invoke = free + 1 + rng.below(10);
        let dur = 1 + rng.below(10 * o.overlap.max(1));
        let ret = invoke + dur;
        let lin = invoke + rng.below(dur);
        let info = rng.chance(o.info_rate);
        slots.push(Slot {
            process: p,
            invoke,
            lin,
            ret,
            key: rng.below(o.keys.max(1) as u64) as usize,
            info,
        });
        // An info op retires its process: a fresh one takes its place.
        let next = if info { p + conc } else { p };
        heap.push(std::cmp::Reverse((ret, next)));
    }
    slots
}

/// Turns (slot, f, invoke value, completion type, completion value) into history ops
/// ordered by time. An info completion is written as an `info` line.
fn emit(items: Vec<(Slot, &'static str, Value, OpType, Value)>) -> Vec<Op> {
    // (time, tiebreak, op)
    let mut events: Vec<(u64, u64, Op)> = Vec::with_capacity(items.len() * 2);
    for (n, (s, f, inv, kind, done)) in items.into_iter().enumerate() {
        let n = n as u64;
        events.push((
            s.invoke,
            2 * n,
            Op {
                index: 0,
                time: s.invoke,
                process: Process::Client(s.process),
                kind: OpType::Invoke,
                f: f.to_string(),
                value: inv.into(),
                node: None,
                error: None,
            },
        ));
        events.push((
            s.ret,
            2 * n + 1,
            Op {
                index: 0,
                time: s.ret,
                process: Process::Client(s.process),
                kind,
                f: f.to_string(),
                value: done.into(),
                node: None,
                error: (kind != OpType::Ok).then(|| "generated".to_string()),
            },
        ));
    }
    // Returns sort before invokes at the same instant, so a process's next op never
    // precedes its previous completion.
    events.sort_by_key(|(t, tie, op)| (*t, op.kind == OpType::Invoke, *tie));
    events
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, mut op))| {
            op.index = i as u64;
            op
        })
        .collect()
}

fn key_name(prefix: &str, k: usize) -> String {
    format!("{prefix}{k}")
}

/// A register history (read / write / cas) that is linearizable by construction.
pub fn register(o: &GenOptions, cas_rate: f64) -> Vec<Op> {
    let mut rng = Rng::new(o.seed);
    let mut slots = schedule(&mut rng, o);
    slots.sort_by_key(|s| s.lin);
    let mut state: Vec<Option<i64>> = vec![None; o.keys.max(1)];
    let mut next_value = 1i64;
    let mut items = Vec::with_capacity(slots.len());
    for s in slots {
        let key = key_name("r", s.key);
        let cur = state.get(s.key).copied().flatten();
        let roll = rng.below(1000) as f64 / 1000.0;
        if roll < o.read_rate {
            let inv = json!({"key": key});
            if s.info {
                items.push((s, "read", inv.clone(), OpType::Fail, inv));
            } else {
                let done = json!({"key": key, "value": cur});
                items.push((s, "read", inv, OpType::Ok, done));
            }
            continue;
        }
        let v = next_value;
        next_value += 1;
        if roll < o.read_rate + cas_rate {
            // Half the cas attempts expect the current value, so some succeed.
            let from = match cur {
                Some(c) if rng.chance(0.5) => c,
                _ => v - 1 - rng.below(3) as i64,
            };
            let inv = json!({"key": key, "from": from, "to": v});
            let applies = cur == Some(from) && (!s.info || rng.chance(0.5));
            if applies {
                if let Some(slot) = state.get_mut(s.key) {
                    *slot = Some(v);
                }
            }
            let kind = if s.info {
                OpType::Info
            } else if applies {
                OpType::Ok
            } else {
                OpType::Fail
            };
            items.push((s, "cas", inv.clone(), kind, inv));
        } else {
            let inv = json!({"key": key, "value": v});
            if !s.info || rng.chance(0.5) {
                if let Some(slot) = state.get_mut(s.key) {
                    *slot = Some(v);
                }
            }
            let kind = if s.info { OpType::Info } else { OpType::Ok };
            items.push((s, "write", inv.clone(), kind, inv));
        }
    }
    emit(items)
}

/// A counter history (INCRBY and reads) that is correct by construction.
pub fn counter(o: &GenOptions) -> Vec<Op> {
    let mut rng = Rng::new(o.seed);
    let mut slots = schedule(&mut rng, o);
    slots.sort_by_key(|s| s.lin);
    let mut state: Vec<i64> = vec![0; o.keys.max(1)];
    let mut items = Vec::with_capacity(slots.len());
    for s in slots {
        let key = key_name("c", s.key);
        if rng.chance(o.read_rate) {
            let inv = json!({"key": key});
            if s.info {
                items.push((s, "read", inv.clone(), OpType::Fail, inv));
            } else {
                let cur = state.get(s.key).copied().unwrap_or(0);
                items.push((
                    s,
                    "read",
                    inv,
                    OpType::Ok,
                    json!({"key": key, "value": cur}),
                ));
            }
            continue;
        }
        let delta = rng.below(10) as i64 + 1;
        let inv = json!({"key": key, "delta": delta});
        if !s.info || rng.chance(0.5) {
            if let Some(c) = state.get_mut(s.key) {
                *c += delta;
            }
        }
        let kind = if s.info { OpType::Info } else { OpType::Ok };
        items.push((s, "add", inv.clone(), kind, inv));
    }
    emit(items)
}

/// A set history (unique adds, reads, then one final read per key).
pub fn set(o: &GenOptions) -> Vec<Op> {
    let mut rng = Rng::new(o.seed);
    let mut slots = schedule(&mut rng, o);
    slots.sort_by_key(|s| s.lin);
    let mut state: Vec<Vec<i64>> = vec![Vec::new(); o.keys.max(1)];
    let mut items = Vec::with_capacity(slots.len());
    let mut next = 1i64;
    let mut end = 0;
    for s in slots {
        end = end.max(s.ret);
        let key = key_name("s", s.key);
        if rng.chance(o.read_rate) {
            let inv = json!({"key": key});
            let cur = state.get(s.key).cloned().unwrap_or_default();
            items.push((
                s,
                "read",
                inv,
                OpType::Ok,
                json!({"key": key, "elements": cur}),
            ));
            continue;
        }
        let el = next;
        next += 1;
        let inv = json!({"key": key, "element": el});
        if !s.info || rng.chance(0.5) {
            if let Some(c) = state.get_mut(s.key) {
                c.push(el);
            }
        }
        let kind = if s.info { OpType::Info } else { OpType::Ok };
        items.push((s, "add", inv.clone(), kind, inv));
    }
    let final_process = u64::MAX / 2;
    for (k, els) in state.into_iter().enumerate() {
        let key = key_name("s", k);
        let t = end + 1 + 2 * k as u64;
        let s = Slot {
            process: final_process,
            invoke: t,
            lin: t,
            ret: t + 1,
            key: k,
            info: false,
        };
        let mut els = els;
        els.sort_unstable();
        items.push((
            s,
            "final-read",
            json!({"key": key}),
            OpType::Ok,
            json!({"key": key, "elements": els}),
        ));
    }
    emit(items)
}

/// JSON lines, as the recorder writes them.
pub fn to_jsonl(ops: &[Op]) -> String {
    let mut out = String::with_capacity(ops.len() * 120);
    for op in ops {
        if let Ok(line) = serde_json::to_string(op) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Wraps generated ops as a parsed history.
pub fn history(ops: Vec<Op>) -> History {
    History {
        ops,
        truncated_tail: false,
    }
}

/// Per-key op counts, for sanity checks in tests.
pub fn ops_per_key(ops: &[Op]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for op in ops.iter().filter(|o| o.kind == OpType::Invoke) {
        if let Some(k) = op.value.json().get("key").and_then(|k| k.as_str()) {
            *m.entry(k.to_string()).or_insert(0) += 1;
        }
    }
    m
}
