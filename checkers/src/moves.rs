//! Slot moves of a run, read from the history's nemesis ops (`start-reshard` /
//! `stop-reshard` evidence, the final `repair-cluster`), and the acknowledged writes
//! of the keys in moved slots. A leaf: imports only the history.

use crate::history::{History, OpType, Process};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One slot's move between two masters.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SlotMove {
    pub slot: u16,
    pub from: String,
    pub to: String,
    pub opened_ms: i64,
    /// When SETSLOT NODE closed it (None: left open for the final repair).
    pub closed_ms: Option<i64>,
    /// The end of the last reshard step that touched it.
    pub last_step_ms: i64,
    /// Keys the steps moved.
    pub keys: Vec<String>,
    /// When the final repair fixed it, if it did.
    pub repaired_ms: Option<i64>,
}

impl SlotMove {
    /// The window in which the source and the target share the slot.
    pub fn window(&self) -> (i64, i64) {
        (self.opened_ms, self.closed_ms.unwrap_or(self.last_step_ms))
    }
}

/// An acknowledged write (history) of a key: (key, node, invoke ms, ack ms).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    pub node: String,
    pub invoked_ms: i64,
    pub acked_ms: i64,
    pub index: u64,
}

/// The slot moves of a run, from the `start-reshard`/`stop-reshard` evidence and the
/// `repair-cluster` evidence.
pub fn moves(history: &History) -> Vec<SlotMove> {
    let mut out: Vec<SlotMove> = Vec::new();
    let mut open: BTreeMap<u16, usize> = BTreeMap::new();
    for op in history.ops.iter().filter(|o| o.process == Process::Nemesis) {
        let t = (op.time / 1_000_000) as i64;
        let v = op.value.json();
        let ev = &v["evidence"];
        if op.f == "repair-cluster" {
            for s in ev["slots"].as_array().into_iter().flatten() {
                if let Some(i) = s["slot"].as_u64().and_then(|s| open.remove(&(s as u16))) {
                    if let Some(m) = out.get_mut(i) {
                        m.repaired_ms = Some(t);
                    }
                }
            }
            continue;
        }
        if !(op.f == "start-reshard" || op.f == "stop-reshard") || ev.is_null() {
            continue;
        }
        let (from, to) = (
            ev["from"].as_str().unwrap_or("?").to_string(),
            ev["to"].as_str().unwrap_or("?").to_string(),
        );
        for o in ev["opened"].as_array().into_iter().flatten() {
            let (Some(slot), Some(ms)) = (o["slot"].as_u64(), o["ms"].as_i64()) else {
                continue;
            };
            out.push(SlotMove {
                slot: slot as u16,
                from: from.clone(),
                to: to.clone(),
                opened_ms: ms,
                closed_ms: None,
                last_step_ms: t,
                keys: vec![],
                repaired_ms: None,
            });
            open.insert(slot as u16, out.len() - 1);
        }
        for (slot, keys) in ev["moved"].as_object().into_iter().flatten() {
            let Some(i) = slot.parse::<u16>().ok().and_then(|s| open.get(&s)) else {
                continue;
            };
            if let Some(m) = out.get_mut(*i) {
                m.keys.extend(
                    keys.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| k.as_str().map(str::to_string)),
                );
            }
        }
        for c in ev["closed"].as_array().into_iter().flatten() {
            let (Some(slot), Some(ms)) = (c["slot"].as_u64(), c["ms"].as_i64()) else {
                continue;
            };
            if let Some(m) = open.remove(&(slot as u16)).and_then(|i| out.get_mut(i)) {
                m.closed_ms = Some(ms);
            }
        }
        for i in open.values() {
            if let Some(m) = out.get_mut(*i) {
                m.last_step_ms = m.last_step_ms.max(t);
            }
        }
    }
    out
}

/// The acknowledged writes of keys in `slots`.
pub fn writes_in(history: &History, slots: &BTreeSet<u16>) -> Vec<Write> {
    let mut invoked: BTreeMap<Process, i64> = BTreeMap::new();
    let mut out = Vec::new();
    for op in &history.ops {
        if op.process == Process::Nemesis {
            continue;
        }
        let key = op.process;
        if op.kind == OpType::Invoke {
            invoked.insert(key, (op.time / 1_000_000) as i64);
            continue;
        }
        // claims::is_ok_write's kinds (claims imports run_data, which imports this).
        if op.kind != OpType::Ok
            || !matches!(op.f.as_str(), "add" | "write" | "cas" | "incr" | "txn")
        {
            continue;
        }
        let v = op.value.json();
        let (Some(k), Some(node)) = (v["key"].as_str(), op.node.as_deref()) else {
            continue;
        };
        if !slots.contains(&hearsay_node::slots::key_slot(k.as_bytes())) {
            continue;
        }
        let acked_ms = (op.time / 1_000_000) as i64;
        out.push(Write {
            key: k.to_string(),
            node: node.to_string(),
            invoked_ms: invoked.get(&key).copied().unwrap_or(acked_ms),
            acked_ms,
            index: op.index,
        });
    }
    out
}
