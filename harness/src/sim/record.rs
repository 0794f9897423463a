//! What a simulated run records, in memory until the end: the history (the
//! same `Op` lines the real recorder writes, stamped with virtual time), the
//! snapshots, and a digest of the history and every node's event log.

use hearsay_checkers::{OpType, Process};
use std::cell::Cell;
use std::rc::Rc;

/// One history line, field for field as `hearsay_checkers::Op` serializes
/// (`value` null for null, else its compact JSON).
#[derive(serde::Serialize)]
struct OpLine<'a> {
    index: u64,
    time: u64,
    process: Process,
    #[serde(rename = "type")]
    kind: OpType,
    f: &'a str,
    value: &'a serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The history recorder of a simulated run.
pub struct Rec {
    /// Virtual µs now (the world sets it before running anything).
    pub now_us: Rc<Cell<u64>>,
    /// History time 0 (µs): the start of the workload.
    pub t0_us: u64,
    pub history: Vec<u8>,
    pub nemesis: Vec<u8>,
    next: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Rec {
    pub fn new(now_us: Rc<Cell<u64>>) -> Rec {
        Rec {
            now_us,
            t0_us: 0,
            history: Vec::with_capacity(1 << 20),
            nemesis: Vec::new(),
            next: 0,
            ok: 0,
            fail: 0,
            info: 0,
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.now_us.get().saturating_sub(self.t0_us) * 1000
    }

    pub fn record(
        &mut self,
        process: Process,
        kind: OpType,
        f: &str,
        value: serde_json::Value,
        node: Option<String>,
        error: Option<String>,
    ) {
        // The line `Op` writes, with the value serialized once in place
        // (`Op` keeps it as raw text: a second serialization per op).
        let op = OpLine {
            index: self.next,
            time: self.now_ns(),
            process,
            kind,
            f,
            value: &value,
            node,
            error,
        };
        self.next += 1;
        if matches!(process, Process::Client(_)) {
            match kind {
                OpType::Ok => self.ok += 1,
                OpType::Fail => self.fail += 1,
                OpType::Info => self.info += 1,
                OpType::Invoke => {}
            }
        }
        // Serializing an Op cannot fail (string keys only).
        if let Ok(line) = serde_json::to_vec(&op) {
            self.history.extend_from_slice(&line);
            self.history.push(b'\n');
            if process == Process::Nemesis {
                self.nemesis.extend_from_slice(&line);
                self.nemesis.push(b'\n');
            }
        }
    }
}

/// A 64-bit digest of several byte strings, each followed by its length so
/// that moving bytes between them changes it: 8 bytes at a time, FNV-style
/// multiply and a final avalanche (splitmix64). Enough to tell two runs
/// apart; not a cryptographic hash.
pub fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    const P: u64 = 0x0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        let mut chunks = p.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            h = (h ^ w).wrapping_mul(P).rotate_left(29);
        }
        for b in chunks.remainder() {
            h = (h ^ *b as u64).wrapping_mul(P);
        }
        h = (h ^ p.len() as u64).wrapping_mul(P).rotate_left(29);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    format!("{h:016x}")
}
