//! The `list-append` workload: transactions of RPUSH (unique values) and LRANGE
//! micro-ops over the keys of one hash tag; multi-op transactions run in MULTI/EXEC.
//!
//! History value: `{"ops": [["append", K, V] | ["r", K, null | [..]], ..]}` with f
//! `txn` (or `final-read`). See `hearsay_checkers::list_append`.

use crate::cluster::{ClientConfig, ClusterClient, Outcome};
use crate::conn::Transport;
use crate::register::Done;
use crate::resp::Value;
use crate::rng::{below, stream, unit};
use crate::txn;
use hearsay_checkers::OpType;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// Keys per hash-tag group (a transaction stays inside one group).
pub const GROUP: usize = 3;

/// One micro-op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Micro {
    Append(String, i64),
    Read(String),
}

/// A transaction (or a final read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListOp {
    pub micros: Vec<Micro>,
    pub final_read: bool,
}

fn micro_cmd(m: &Micro) -> Vec<Vec<u8>> {
    match m {
        Micro::Append(k, v) => vec![
            b"RPUSH".to_vec(),
            k.as_bytes().to_vec(),
            v.to_string().into_bytes(),
        ],
        Micro::Read(k) => vec![
            b"LRANGE".to_vec(),
            k.as_bytes().to_vec(),
            b"0".to_vec(),
            b"-1".to_vec(),
        ],
    }
}

fn parse_list(v: &Value) -> Option<Vec<i64>> {
    // (Sized up front: collecting through Option loses the length.)
    let items = v.as_array()?;
    let mut out = Vec::with_capacity(items.len());
    for x in items {
        out.push(x.parse_i64()?);
    }
    Some(out)
}

impl ListOp {
    pub fn final_read(key: &str) -> ListOp {
        ListOp {
            micros: vec![Micro::Read(key.to_string())],
            final_read: true,
        }
    }

    pub fn f(&self) -> &'static str {
        if self.final_read {
            "final-read"
        } else {
            "txn"
        }
    }

    pub fn key(&self) -> &str {
        match self.micros.first() {
            Some(Micro::Append(k, _)) | Some(Micro::Read(k)) => k,
            None => "",
        }
    }

    fn is_read_only(&self) -> bool {
        self.micros.iter().all(|m| matches!(m, Micro::Read(_)))
    }

    pub fn value(&self) -> serde_json::Value {
        let ops: Vec<serde_json::Value> = self
            .micros
            .iter()
            .map(|m| match m {
                Micro::Append(k, v) => json!(["append", k, v]),
                Micro::Read(k) => json!(["r", k, null]),
            })
            .collect();
        json!({ "ops": ops })
    }

    /// The ok value from per-micro-op replies (in order).
    fn ok_value(&self, replies: &[Value]) -> Result<serde_json::Value, String> {
        if replies.len() != self.micros.len() {
            return Err(format!(
                "{} replies for {} micro-ops",
                replies.len(),
                self.micros.len()
            ));
        }
        let mut ops = Vec::new();
        for (m, r) in self.micros.iter().zip(replies) {
            ops.push(match (m, r) {
                (Micro::Append(k, v), Value::Int(_)) => json!(["append", k, v]),
                (Micro::Read(k), r) => match parse_list(r) {
                    Some(l) => json!(["r", k, l]),
                    None => return Err(format!("unexpected LRANGE reply {r:?}")),
                },
                (_, other) => return Err(format!("unexpected RPUSH reply {other:?}")),
            });
        }
        Ok(json!({ "ops": ops }))
    }

    fn complete(
        &self,
        outcome: Outcome,
        single: bool,
    ) -> (OpType, serde_json::Value, Option<String>) {
        match outcome {
            Outcome::Fail(e) => (OpType::Fail, self.value(), Some(e)),
            Outcome::Info(e) if self.is_read_only() => (OpType::Fail, self.value(), Some(e)),
            Outcome::Info(e) => (OpType::Info, self.value(), Some(e)),
            Outcome::Ok(v) => {
                let replies = if single {
                    vec![v]
                } else {
                    v.as_array().map(<[Value]>::to_vec).unwrap_or_default()
                };
                match self.ok_value(&replies) {
                    Ok(val) => (OpType::Ok, val, None),
                    // EXEC ran, so an append may have happened: unknown, not fail.
                    Err(e) if !self.is_read_only() => (OpType::Info, self.value(), Some(e)),
                    Err(e) => (OpType::Fail, self.value(), Some(e)),
                }
            }
        }
    }

    pub async fn execute<T: Transport>(
        &self,
        client: &mut ClusterClient<T>,
        cfg: ClientConfig,
    ) -> Done {
        let key = self.key().as_bytes().to_vec();
        if let [m] = self.micros.as_slice() {
            let cmd = micro_cmd(m);
            let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
            let done = client.call(&key, &args).await;
            let (t, v, e) = self.complete(done.outcome, true);
            return (t, v, e, done.node);
        }
        let cmds: Vec<Vec<Vec<u8>>> = self.micros.iter().map(micro_cmd).collect();
        let done = txn::run(client, cfg, &key, &[], &[], move |_| Ok(cmds)).await;
        let (t, v, e) = self.complete(done.outcome, false);
        (t, v, e, done.node)
    }
}

/// Groups keys for transactions: key `i` of a run belongs to group `i / GROUP`; keys
/// of one group share a hash tag (the key layout of the `any` module).
pub struct ListGen {
    rng: ChaCha8Rng,
    process: u64,
    seq: u64,
    read_fraction: f64,
}

impl ListGen {
    pub fn new(seed: u64, process: u64, read_fraction: f64) -> ListGen {
        ListGen {
            rng: stream(seed, &format!("list-append-process-{process}")),
            process,
            seq: 0,
            read_fraction,
        }
    }

    /// 1 to 3 micro-ops on keys of one group. Values are `process << 32 | seq`, unique.
    pub fn next_op(&mut self, keys: &[String]) -> ListOp {
        let groups = keys.len().div_ceil(GROUP).max(1);
        let g = below(&mut self.rng, groups as u64) as usize;
        let group: Vec<&String> = keys.iter().skip(g * GROUP).take(GROUP).collect();
        let n = 1 + below(&mut self.rng, 3) as usize;
        let mut micros = Vec::with_capacity(n);
        for _ in 0..n {
            let Some(k) = group.get(below(&mut self.rng, group.len() as u64) as usize) else {
                break;
            };
            if unit(&mut self.rng) < self.read_fraction {
                micros.push(Micro::Read((*k).clone()));
            } else {
                self.seq += 1;
                micros.push(Micro::Append(
                    (*k).clone(),
                    ((self.process << 32) | self.seq) as i64,
                ));
            }
        }
        ListOp {
            micros,
            final_read: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_reply_maps_to_micro_results() {
        let op = ListOp {
            micros: vec![Micro::Append("a".into(), 5), Micro::Read("a".into())],
            final_read: false,
        };
        let exec = Value::Array(Some(vec![
            Value::Int(1),
            Value::Array(Some(vec![Value::Bulk(Some(b"5".to_vec().into()))])),
        ]));
        let (t, v, _) = op.complete(Outcome::Ok(exec), false);
        assert_eq!(t, OpType::Ok);
        assert_eq!(v["ops"][1], json!(["r", "a", [5]]));
        let (t, _, _) = op.complete(Outcome::Ok(Value::Array(Some(vec![]))), false);
        assert_eq!(t, OpType::Info);
        assert_eq!(
            op.complete(Outcome::Info("t".into()), false).0,
            OpType::Info
        );
        let r = ListOp::final_read("a");
        assert_eq!(r.complete(Outcome::Info("t".into()), true).0, OpType::Fail);
        assert_eq!(r.f(), "final-read");
    }

    #[test]
    fn txns_stay_in_one_group_and_values_are_unique() {
        let keys = crate::any::keys(crate::any::Workload::ListAppend, 9);
        let mut g = ListGen::new(3, 2, 0.3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            let op = g.next_op(&keys);
            let tags: std::collections::HashSet<u16> = op
                .micros
                .iter()
                .map(|m| match m {
                    Micro::Append(k, _) | Micro::Read(k) => crate::slot::key_slot(k.as_bytes()),
                })
                .collect();
            assert_eq!(tags.len(), 1, "{op:?}");
            for m in &op.micros {
                if let Micro::Append(_, v) = m {
                    assert!(seen.insert(*v));
                }
            }
        }
    }
}
