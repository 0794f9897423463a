//! Workload selection: one op type and one generator over all workloads, so that the
//! runner drives any of them the same way.

use crate::cluster::{ClientConfig, ClusterClient};
use crate::conn::Transport;
use crate::counter::{CounterGen, CounterOp};
use crate::list_append::{ListGen, ListOp, GROUP};
use crate::register::{Done, RegisterGen, RegisterOp};
use crate::set::{ProcessGen, SetOp};
use crate::slot::{key_slot, SLOTS};

/// The workloads `--workload` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Set,
    Register,
    Counter,
    ListAppend,
}

impl Workload {
    pub const NAMES: &'static str = "set, register, counter, list-append";

    pub fn parse(name: &str) -> Option<Workload> {
        match name {
            "set" => Some(Workload::Set),
            "register" => Some(Workload::Register),
            "counter" => Some(Workload::Counter),
            "list-append" => Some(Workload::ListAppend),
            _ => None,
        }
    }
}

/// `n` keys spread over all slot ranges so every master gets load. List-append keys
/// come in groups of [`GROUP`] sharing one hash tag (multi-key MULTI/EXEC needs one
/// slot); each group lands in its own slot range.
pub fn keys(w: Workload, n: usize) -> Vec<String> {
    if w == Workload::Set {
        return crate::set::keys(n);
    }
    let prefix = match w {
        Workload::Register => "reg",
        Workload::Counter => "ctr",
        _ => "la",
    };
    let n = n.clamp(1, SLOTS as usize * GROUP);
    let per = if w == Workload::ListAppend { GROUP } else { 1 };
    let tags = n.div_ceil(per).min(SLOTS as usize);
    let mut out = Vec::with_capacity(n);
    for i in 0..tags {
        let lo = (i * SLOTS as usize / tags) as u16;
        let hi = ((i + 1) * SLOTS as usize / tags) as u16;
        // A hash tag whose slot falls in [lo, hi): CRC16 spreads well.
        let tag = (0u64..100_000)
            .map(|j| format!("{i}.{j}"))
            .find(|t| (lo..hi).contains(&key_slot(t.as_bytes())))
            .unwrap_or_else(|| i.to_string());
        for m in 0..per {
            if out.len() < n {
                out.push(if per == 1 {
                    format!("{prefix}{{{tag}}}")
                } else {
                    format!("{prefix}{{{tag}}}:{m}")
                });
            }
        }
    }
    out
}

/// An op of any workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyOp {
    Set(SetOp),
    Register(RegisterOp),
    Counter(CounterOp),
    List(ListOp),
}

impl AnyOp {
    /// The final read of one key after healing.
    pub fn final_read(w: Workload, key: &str) -> AnyOp {
        let key = key.to_string();
        match w {
            Workload::Set => AnyOp::Set(SetOp::FinalRead { key }),
            Workload::Register => AnyOp::Register(RegisterOp::FinalRead { key }),
            Workload::Counter => AnyOp::Counter(CounterOp::FinalRead { key }),
            Workload::ListAppend => AnyOp::List(ListOp::final_read(&key)),
        }
    }

    pub fn f(&self) -> &'static str {
        match self {
            AnyOp::Set(o) => o.f(),
            AnyOp::Register(o) => o.f(),
            AnyOp::Counter(o) => o.f(),
            AnyOp::List(o) => o.f(),
        }
    }

    pub fn value(&self) -> serde_json::Value {
        match self {
            AnyOp::Set(o) => o.value(),
            AnyOp::Register(o) => o.value(),
            AnyOp::Counter(o) => o.value(),
            AnyOp::List(o) => o.value(),
        }
    }

    /// Runs the op: (type, completion value, error, node).
    pub async fn execute<T: Transport>(
        &self,
        client: &mut ClusterClient<T>,
        cfg: ClientConfig,
    ) -> Done {
        match self {
            AnyOp::Set(o) => {
                let cmd = o.command();
                let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
                let done = client.call(o.key().as_bytes(), &args).await;
                let (t, v, e) = o.complete(&done.outcome);
                (t, v, e, done.node)
            }
            AnyOp::Register(o) => o.execute(client, cfg).await,
            AnyOp::Counter(o) => o.execute(client).await,
            AnyOp::List(o) => o.execute(client, cfg).await,
        }
    }
}

/// A per-process generator of any workload.
pub enum AnyGen {
    Set(ProcessGen),
    Register(RegisterGen),
    Counter(CounterGen),
    List(ListGen),
}

impl AnyGen {
    pub fn new(w: Workload, seed: u64, process: u64, read_fraction: f64) -> AnyGen {
        match w {
            Workload::Set => AnyGen::Set(ProcessGen::new(seed, process, read_fraction)),
            Workload::Register => AnyGen::Register(RegisterGen::new(seed, process, read_fraction)),
            Workload::Counter => AnyGen::Counter(CounterGen::new(seed, process, read_fraction)),
            Workload::ListAppend => AnyGen::List(ListGen::new(seed, process, read_fraction)),
        }
    }

    pub fn next_op(&mut self, keys: &[String]) -> AnyOp {
        match self {
            AnyGen::Set(g) => AnyOp::Set(g.next_op(keys)),
            AnyGen::Register(g) => AnyOp::Register(g.next_op(keys)),
            AnyGen::Counter(g) => AnyOp::Counter(g.next_op(keys)),
            AnyGen::List(g) => AnyOp::List(g.next_op(keys)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cover_slot_ranges_and_groups_share_a_slot() {
        let ks = keys(Workload::Register, 16);
        assert_eq!(ks.len(), 16);
        for (i, k) in ks.iter().enumerate() {
            let s = key_slot(k.as_bytes()) as usize;
            assert!(s >= i * 1024 && s < (i + 1) * 1024, "{k} slot {s}");
        }
        let ks = keys(Workload::ListAppend, 12);
        assert_eq!(ks.len(), 12);
        for g in ks.chunks(GROUP) {
            let slots: std::collections::HashSet<u16> =
                g.iter().map(|k| key_slot(k.as_bytes())).collect();
            assert_eq!(slots.len(), 1, "{g:?}");
        }
        assert_eq!(Workload::parse("list-append"), Some(Workload::ListAppend));
        assert_eq!(Workload::parse("bank"), None);
    }
}
