//! The `counter` workload: INCRBY with random deltas and GET reads.
//!
//! History values: `add` → `{"key", "delta"}`; `read`/`final-read` → `{"key"}`, ok
//! `{"key", "value"}` (a missing key reads 0). See `hearsay_checkers::counter`.

use crate::cluster::{ClusterClient, Outcome};
use crate::conn::Transport;
use crate::register::{parse_int_reply, Done};
use crate::resp::Value;
use crate::rng::{below, stream, unit};
use hearsay_checkers::OpType;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// One counter operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CounterOp {
    Add { key: String, delta: i64 },
    Read { key: String },
    FinalRead { key: String },
}

impl CounterOp {
    pub fn f(&self) -> &'static str {
        match self {
            CounterOp::Add { .. } => "add",
            CounterOp::Read { .. } => "read",
            CounterOp::FinalRead { .. } => "final-read",
        }
    }

    pub fn key(&self) -> &str {
        match self {
            CounterOp::Add { key, .. } | CounterOp::Read { key } | CounterOp::FinalRead { key } => {
                key
            }
        }
    }

    pub fn value(&self) -> serde_json::Value {
        match self {
            CounterOp::Add { key, delta } => json!({"key": key, "delta": delta}),
            CounterOp::Read { key } | CounterOp::FinalRead { key } => json!({"key": key}),
        }
    }

    /// Maps an outcome; an unknown read is a fail, a reply of the wrong shape too.
    pub fn complete(&self, outcome: Outcome) -> (OpType, serde_json::Value, Option<String>) {
        let is_read = !matches!(self, CounterOp::Add { .. });
        match outcome {
            Outcome::Fail(e) => (OpType::Fail, self.value(), Some(e)),
            Outcome::Info(e) if is_read => (OpType::Fail, self.value(), Some(e)),
            Outcome::Info(e) => (OpType::Info, self.value(), Some(e)),
            Outcome::Ok(v) => match (self, v) {
                (CounterOp::Add { .. }, Value::Int(_)) => (OpType::Ok, self.value(), None),
                (CounterOp::Add { .. }, other) => (
                    OpType::Fail,
                    self.value(),
                    Some(format!("unexpected reply {other:?}")),
                ),
                (_, v) => match parse_int_reply(&v) {
                    Ok(x) => (
                        OpType::Ok,
                        json!({"key": self.key(), "value": x.unwrap_or(0)}),
                        None,
                    ),
                    Err(e) => (OpType::Fail, self.value(), Some(e)),
                },
            },
        }
    }

    pub async fn execute<T: Transport>(&self, client: &mut ClusterClient<T>) -> Done {
        let key = self.key().as_bytes().to_vec();
        let done = match self {
            CounterOp::Add { delta, .. } => {
                let d = delta.to_string().into_bytes();
                client.call(&key, &[b"INCRBY", &key, &d]).await
            }
            _ => client.call(&key, &[b"GET", &key]).await,
        };
        let (t, v, e) = self.complete(done.outcome);
        (t, v, e, done.node)
    }
}

/// Per-process generator: deltas 1..=5.
pub struct CounterGen {
    rng: ChaCha8Rng,
    read_fraction: f64,
}

impl CounterGen {
    pub fn new(seed: u64, process: u64, read_fraction: f64) -> CounterGen {
        CounterGen {
            rng: stream(seed, &format!("counter-process-{process}")),
            read_fraction,
        }
    }

    pub fn next_op(&mut self, keys: &[String]) -> CounterOp {
        let key = keys
            .get(below(&mut self.rng, keys.len() as u64) as usize)
            .cloned()
            .unwrap_or_default();
        if unit(&mut self.rng) < self.read_fraction {
            return CounterOp::Read { key };
        }
        CounterOp::Add {
            key,
            delta: below(&mut self.rng, 5) as i64 + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_taxonomy() {
        let add = CounterOp::Add {
            key: "k".into(),
            delta: 2,
        };
        assert_eq!(add.complete(Outcome::Ok(Value::Int(7))).0, OpType::Ok);
        assert_eq!(add.complete(Outcome::Info("t".into())).0, OpType::Info);
        assert_eq!(
            add.complete(Outcome::Ok(Value::Simple("OK".into()))).0,
            OpType::Fail
        );
        let read = CounterOp::Read { key: "k".into() };
        let (t, v, _) = read.complete(Outcome::Ok(Value::Bulk(None)));
        assert_eq!((t, v["value"].as_i64()), (OpType::Ok, Some(0)));
        let (_, v, _) = read.complete(Outcome::Ok(Value::Bulk(Some(b"12".to_vec().into()))));
        assert_eq!(v["value"], 12);
        assert_eq!(read.complete(Outcome::Info("t".into())).0, OpType::Fail);
    }
}
