//! The `register` workload: GET / SET / compare-and-set (WATCH, GET, MULTI, SET, EXEC)
//! on many independent keys. Values come from a small range, as in Jepsen's
//! cas-register, so that compare-and-set often succeeds.
//!
//! History values: `read`/`final-read` → `{"key"}`, ok `{"key", "value": V|null}`;
//! `write` → `{"key", "value"}`; `cas` → `{"key", "from", "to"}`.
//! See `hearsay_checkers::linear`.

use crate::cluster::{ClientConfig, ClusterClient, Outcome};
use crate::conn::Transport;
use crate::resp::Value;
use crate::rng::{below, stream, unit};
use crate::txn;
use hearsay_checkers::OpType;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// Values are drawn from 0..VALUES.
const VALUES: u64 = 5;

/// One register operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    Read { key: String },
    FinalRead { key: String },
    Write { key: String, value: i64 },
    Cas { key: String, from: i64, to: i64 },
}

/// A finished op: (type, completion value, error, node).
pub type Done = (
    OpType,
    serde_json::Value,
    Option<String>,
    Option<std::net::SocketAddr>,
);

/// Parses a GET reply: nil → None, an integer string → Some.
pub fn parse_int_reply(v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Bulk(None) => Ok(None),
        other => other
            .parse_i64()
            .map(Some)
            .ok_or_else(|| format!("unexpected reply {other:?}")),
    }
}

impl RegisterOp {
    pub fn f(&self) -> &'static str {
        match self {
            RegisterOp::Read { .. } => "read",
            RegisterOp::FinalRead { .. } => "final-read",
            RegisterOp::Write { .. } => "write",
            RegisterOp::Cas { .. } => "cas",
        }
    }

    pub fn key(&self) -> &str {
        match self {
            RegisterOp::Read { key }
            | RegisterOp::FinalRead { key }
            | RegisterOp::Write { key, .. }
            | RegisterOp::Cas { key, .. } => key,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, RegisterOp::Read { .. } | RegisterOp::FinalRead { .. })
    }

    pub fn value(&self) -> serde_json::Value {
        match self {
            RegisterOp::Read { key } | RegisterOp::FinalRead { key } => json!({"key": key}),
            RegisterOp::Write { key, value } => json!({"key": key, "value": value}),
            RegisterOp::Cas { key, from, to } => json!({"key": key, "from": from, "to": to}),
        }
    }

    /// Maps an outcome to (type, value, error); an unknown read is a plain fail.
    fn finish(
        &self,
        outcome: Outcome,
        ok_value: impl FnOnce(Value) -> Result<serde_json::Value, String>,
    ) -> (OpType, serde_json::Value, Option<String>) {
        match outcome {
            Outcome::Fail(e) => (OpType::Fail, self.value(), Some(e)),
            Outcome::Info(e) if self.is_read() => (OpType::Fail, self.value(), Some(e)),
            Outcome::Info(e) => (OpType::Info, self.value(), Some(e)),
            Outcome::Ok(v) => match ok_value(v) {
                Ok(val) => (OpType::Ok, val, None),
                Err(e) => (OpType::Fail, self.value(), Some(e)),
            },
        }
    }

    /// Runs the op against the cluster.
    pub async fn execute<T: Transport>(
        &self,
        client: &mut ClusterClient<T>,
        cfg: ClientConfig,
    ) -> Done {
        let key = self.key().as_bytes().to_vec();
        match self {
            RegisterOp::Read { key: k } | RegisterOp::FinalRead { key: k } => {
                let done = client.call(&key, &[b"GET", &key]).await;
                let (t, v, e) = self.finish(done.outcome, |v| {
                    parse_int_reply(&v).map(|x| json!({"key": k, "value": x}))
                });
                (t, v, e, done.node)
            }
            RegisterOp::Write { value, .. } => {
                let val = value.to_string().into_bytes();
                let done = client.call(&key, &[b"SET", &key, &val]).await;
                let me = self.value();
                let (t, v, e) = self.finish(done.outcome, |v| match v {
                    Value::Simple(_) => Ok(me),
                    other => Err(format!("unexpected reply {other:?}")),
                });
                (t, v, e, done.node)
            }
            RegisterOp::Cas { from, to, .. } => {
                let (from, to) = (*from, *to);
                let k2 = key.clone();
                let done = txn::run(
                    client,
                    cfg,
                    &key,
                    &[&key],
                    &[vec![b"GET".to_vec(), key.clone()]],
                    move |got| {
                        let cur = got.first().map(parse_int_reply).transpose()?.flatten();
                        if cur != Some(from) {
                            // Certainly not applied: nothing was queued.
                            return Err(format!("cas mismatch: current {cur:?}"));
                        }
                        Ok(vec![vec![b"SET".to_vec(), k2, to.to_string().into_bytes()]])
                    },
                )
                .await;
                let me = self.value();
                let (t, v, e) = self.finish(done.outcome, |_| Ok(me));
                (t, v, e, done.node)
            }
        }
    }
}

/// Per-process generator.
pub struct RegisterGen {
    rng: ChaCha8Rng,
    read_fraction: f64,
}

impl RegisterGen {
    pub fn new(seed: u64, process: u64, read_fraction: f64) -> RegisterGen {
        RegisterGen {
            rng: stream(seed, &format!("register-process-{process}")),
            read_fraction,
        }
    }

    /// Reads with `read_fraction`, the rest split evenly between writes and cas.
    pub fn next_op(&mut self, keys: &[String]) -> RegisterOp {
        let key = keys
            .get(below(&mut self.rng, keys.len() as u64) as usize)
            .cloned()
            .unwrap_or_default();
        let u = unit(&mut self.rng);
        if u < self.read_fraction {
            return RegisterOp::Read { key };
        }
        let value = below(&mut self.rng, VALUES) as i64;
        if unit(&mut self.rng) < 0.5 {
            RegisterOp::Write { key, value }
        } else {
            let from = below(&mut self.rng, VALUES) as i64;
            RegisterOp::Cas {
                key,
                from,
                to: value,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_replies_parse() {
        assert_eq!(parse_int_reply(&Value::Bulk(None)), Ok(None));
        assert_eq!(
            parse_int_reply(&Value::Bulk(Some(b"42".to_vec().into()))),
            Ok(Some(42))
        );
        assert!(parse_int_reply(&Value::Bulk(Some(b"x".to_vec().into()))).is_err());
        assert!(parse_int_reply(&Value::Int(3)).is_err());
    }

    #[test]
    fn generator_mixes_ops_deterministically() {
        let keys = vec!["a".to_string(), "b".to_string()];
        let run = |seed| {
            let mut g = RegisterGen::new(seed, 1, 0.3);
            (0..200).map(|_| g.next_op(&keys)).collect::<Vec<_>>()
        };
        let ops = run(5);
        assert_eq!(ops, run(5));
        assert!(ops.iter().any(|o| o.f() == "read"));
        assert!(ops.iter().any(|o| o.f() == "write"));
        assert!(ops.iter().any(|o| o.f() == "cas"));
    }

    #[test]
    fn info_read_is_fail_info_write_is_info() {
        let r = RegisterOp::Read { key: "k".into() };
        assert_eq!(
            r.finish(Outcome::Info("t".into()), |_| Ok(json!(1))).0,
            OpType::Fail
        );
        let w = RegisterOp::Write {
            key: "k".into(),
            value: 1,
        };
        assert_eq!(
            w.finish(Outcome::Info("t".into()), |_| Ok(json!(1))).0,
            OpType::Info
        );
    }
}
