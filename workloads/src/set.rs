//! The `set` workload: unique SADD elements spread over keys that cover every slot
//! range, reads during the run, and final reads after healing.
//!
//! History values: `add` → `{"key", "element"}`; `read`/`final-read` → `{"key"}` on
//! invoke and `{"key", "elements"}` on ok. See `hearsay_checkers::set`.

use crate::cluster::Outcome;
use crate::resp::Value;
use crate::rng::{below, stream, unit};
use crate::slot::{key_slot, SLOTS};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// The keys of a set run: key `i` hashes into the `i`-th of `n` equal slot ranges, so
/// every master (whatever its ranges) holds some keys.
pub fn keys(n: usize) -> Vec<String> {
    let n = n.clamp(1, SLOTS as usize);
    (0..n)
        .map(|i| {
            let lo = (i * SLOTS as usize / n) as u16;
            let hi = ((i + 1) * SLOTS as usize / n) as u16;
            // Search a hash tag whose slot falls in [lo, hi); CRC16 spreads well, so
            // this ends within a few thousand tries even for one-slot ranges.
            (0u64..)
                .map(|j| format!("set{{{i}.{j}}}"))
                .find(|k| (lo..hi).contains(&key_slot(k.as_bytes())))
                .unwrap_or_else(|| format!("set{{{i}}}"))
        })
        .collect()
}

/// One set operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOp {
    Add { key: String, element: i64 },
    Read { key: String },
    FinalRead { key: String },
}

impl SetOp {
    pub fn f(&self) -> &'static str {
        match self {
            SetOp::Add { .. } => "add",
            SetOp::Read { .. } => "read",
            SetOp::FinalRead { .. } => "final-read",
        }
    }

    pub fn key(&self) -> &str {
        match self {
            SetOp::Add { key, .. } | SetOp::Read { key } | SetOp::FinalRead { key } => key,
        }
    }

    /// Reads change nothing, so an unknown read outcome is a plain failure and does
    /// not retire the process.
    pub fn is_read(&self) -> bool {
        !matches!(self, SetOp::Add { .. })
    }

    /// The invoke value.
    pub fn value(&self) -> serde_json::Value {
        match self {
            SetOp::Add { key, element } => json!({"key": key, "element": element}),
            SetOp::Read { key } | SetOp::FinalRead { key } => json!({"key": key}),
        }
    }

    /// The redis command.
    pub fn command(&self) -> Vec<Vec<u8>> {
        match self {
            SetOp::Add { key, element } => vec![
                b"SADD".to_vec(),
                key.as_bytes().to_vec(),
                element.to_string().into_bytes(),
            ],
            SetOp::Read { key } | SetOp::FinalRead { key } => {
                vec![b"SMEMBERS".to_vec(), key.as_bytes().to_vec()]
            }
        }
    }

    /// Turns the client outcome into the completion's (type, value, error).
    /// A reply of the wrong shape is a fail with the reason: nothing was learned.
    pub fn complete(
        &self,
        outcome: &Outcome,
    ) -> (hearsay_checkers::OpType, serde_json::Value, Option<String>) {
        use hearsay_checkers::OpType;
        match outcome {
            Outcome::Fail(e) => (OpType::Fail, self.value(), Some(e.clone())),
            Outcome::Info(e) if self.is_read() => (OpType::Fail, self.value(), Some(e.clone())),
            Outcome::Info(e) => (OpType::Info, self.value(), Some(e.clone())),
            Outcome::Ok(v) => match self {
                SetOp::Add { .. } => match v {
                    Value::Int(_) => (OpType::Ok, self.value(), None),
                    other => (
                        OpType::Fail,
                        self.value(),
                        Some(format!("unexpected reply {other:?}")),
                    ),
                },
                SetOp::Read { key } | SetOp::FinalRead { key } => {
                    // (Sized up front: collecting through Option loses the
                    // length, and sets grow to thousands of elements.)
                    let parsed: Option<Vec<i64>> = v.as_array().and_then(|items| {
                        let mut els = Vec::with_capacity(items.len());
                        for i in items {
                            els.push(i.parse_i64()?);
                        }
                        Some(els)
                    });
                    match parsed {
                        Some(mut els) => {
                            els.sort_unstable();
                            (OpType::Ok, json!({"key": key, "elements": els}), None)
                        }
                        None => (
                            OpType::Fail,
                            self.value(),
                            Some(format!("unexpected reply {v:?}")),
                        ),
                    }
                }
            },
        }
    }
}

/// Per-process op generator: a process's sequence depends only on (seed, process).
pub struct ProcessGen {
    rng: ChaCha8Rng,
    process: u64,
    seq: u64,
    read_fraction: f64,
}

impl ProcessGen {
    pub fn new(seed: u64, process: u64, read_fraction: f64) -> ProcessGen {
        ProcessGen {
            rng: stream(seed, &format!("set-process-{process}")),
            process,
            seq: 0,
            read_fraction,
        }
    }

    /// The next op. Elements are `process << 32 | seq`: unique across the run.
    pub fn next_op(&mut self, keys: &[String]) -> SetOp {
        let key = keys
            .get(below(&mut self.rng, keys.len() as u64) as usize)
            .cloned()
            .unwrap_or_default();
        if unit(&mut self.rng) < self.read_fraction {
            return SetOp::Read { key };
        }
        self.seq += 1;
        SetOp::Add {
            key,
            element: ((self.process << 32) | self.seq) as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_checkers::OpType;

    #[test]
    fn keys_cover_every_slot_range() {
        let ks = keys(16);
        assert_eq!(ks.len(), 16);
        for (i, k) in ks.iter().enumerate() {
            let s = key_slot(k.as_bytes()) as usize;
            assert!(s >= i * 1024 && s < (i + 1) * 1024, "{k} slot {s}");
        }
    }

    #[test]
    fn generator_is_deterministic_per_process_and_unique() {
        let ks = keys(8);
        let run = |seed, p| {
            let mut g = ProcessGen::new(seed, p, 0.2);
            (0..50).map(|_| g.next_op(&ks)).collect::<Vec<_>>()
        };
        assert_eq!(run(7, 3), run(7, 3));
        assert_ne!(run(7, 3), run(8, 3));
        let mut seen = std::collections::HashSet::new();
        for p in 0..4 {
            for op in run(7, p) {
                if let SetOp::Add { element, .. } = op {
                    assert!(seen.insert(element));
                }
            }
        }
        assert!(run(7, 3).iter().any(|o| matches!(o, SetOp::Read { .. })));
    }

    #[test]
    fn completion_taxonomy() {
        let add = SetOp::Add {
            key: "k".into(),
            element: 5,
        };
        assert_eq!(add.complete(&Outcome::Ok(Value::Int(1))).0, OpType::Ok);
        assert_eq!(
            add.complete(&Outcome::Info("timeout".into())).0,
            OpType::Info
        );
        assert_eq!(
            add.complete(&Outcome::Fail("CLUSTERDOWN".into())).0,
            OpType::Fail
        );
        let read = SetOp::Read { key: "k".into() };
        assert_eq!(
            read.complete(&Outcome::Info("timeout".into())).0,
            OpType::Fail
        );
        let reply = Value::Array(Some(vec![
            Value::Bulk(Some(b"9".to_vec().into())),
            Value::Bulk(Some(b"2".to_vec().into())),
        ]));
        let (t, v, _) = read.complete(&Outcome::Ok(reply));
        assert_eq!(t, OpType::Ok);
        assert_eq!(v["elements"], json!([2, 9]));
        let junk = Value::Array(Some(vec![Value::Bulk(Some(b"x".to_vec().into()))]));
        assert_eq!(read.complete(&Outcome::Ok(junk)).0, OpType::Fail);
    }
}
