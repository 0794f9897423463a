//! Multi-command operations (WATCH/MULTI/EXEC) on one connection to one master.
//!
//! The cluster client follows MOVED per command, which inside a transaction could run
//! a queued command outside it on another node. So transactions open their own
//! connection to the slot's owner and never follow redirects: a redirect before EXEC
//! aborts the attempt (nothing applied), and the slot map is refreshed for next time.

use crate::cluster::{ClientConfig, ClusterClient, Outcome};
use crate::conn::{ConnError, Link, Transport};
use crate::resp::Value;
use crate::slot::key_slot;
use std::net::SocketAddr;

/// What to do after the WATCHed reads came back: the commands to queue, or a reason to
/// give up (certainly not applied).
pub type Plan = Result<Vec<Vec<Vec<u8>>>, String>;

/// How a transaction ended, with the node it ran on.
pub struct TxnDone {
    pub outcome: Outcome,
    pub node: Option<SocketAddr>,
}

fn refs(cmd: &[Vec<u8>]) -> Vec<&[u8]> {
    cmd.iter().map(|a| a.as_slice()).collect()
}

fn before_exec(e: &ConnError) -> Outcome {
    // Nothing is applied before EXEC is sent, whatever happened to the connection.
    Outcome::Fail(e.tag())
}

/// One command before EXEC: an error reply or a broken connection is a fail.
async fn step<L: Link>(
    conn: &mut L,
    t: std::time::Duration,
    cmd: &[&[u8]],
) -> Result<Value, Outcome> {
    match conn.request(cmd, t).await {
        Ok(Value::Error(e)) => Err(Outcome::Fail(e)),
        Ok(v) => Ok(v),
        Err(e) => Err(before_exec(&e)),
    }
}

/// Runs `WATCH watch..; <reads>; MULTI; plan(reads); EXEC` on the owner of
/// `route_key`. With no watch keys and no reads it is a plain MULTI/EXEC. The EXEC
/// reply (an array) is the ok value; a nil EXEC (watched key changed) is a fail.
pub async fn run<T: Transport>(
    client: &mut ClusterClient<T>,
    cfg: ClientConfig,
    route_key: &[u8],
    watch: &[&[u8]],
    reads: &[Vec<Vec<u8>>],
    plan: impl FnOnce(&[Value]) -> Plan,
) -> TxnDone {
    let slot = key_slot(route_key);
    let mut addr = client.owner(slot);
    if addr.is_none() {
        client.refresh().await;
        addr = client.owner(slot);
    }
    let Some(addr) = addr else {
        return TxnDone {
            outcome: Outcome::Fail("no-node-known".into()),
            node: None,
        };
    };
    let node = Some(addr);
    let fail = |o: Outcome| TxnDone { outcome: o, node };
    let mut conn = match client.open(addr, cfg.connect_timeout).await {
        Ok(c) => c,
        Err(e) => {
            client.refresh().await;
            return fail(before_exec(&e));
        }
    };
    let t = cfg.op_timeout;
    if !watch.is_empty() {
        let mut cmd: Vec<&[u8]> = vec![b"WATCH"];
        cmd.extend_from_slice(watch);
        if let Err(o) = step(&mut conn, t, &cmd).await {
            client.refresh().await;
            return fail(o);
        }
    }
    let mut got = Vec::new();
    for r in reads {
        match step(&mut conn, t, &refs(r)).await {
            Ok(v) => got.push(v),
            Err(o) => {
                client.refresh().await;
                return fail(o);
            }
        }
    }
    let cmds = match plan(&got) {
        Ok(c) => c,
        Err(reason) => return fail(Outcome::Fail(reason)),
    };
    if let Err(o) = step(&mut conn, t, &[b"MULTI"]).await {
        return fail(o);
    }
    for c in &cmds {
        match step(&mut conn, t, &refs(c)).await {
            Ok(_) => {}
            Err(o) => {
                // A queued command was refused (MOVED, CROSSSLOT...): EXEC would abort.
                client.refresh().await;
                return fail(o);
            }
        }
    }
    match conn.request(&[b"EXEC"], t).await {
        Ok(Value::Array(None)) => fail(Outcome::Fail("watched key changed".into())),
        Ok(Value::Error(e)) => fail(Outcome::Fail(e)),
        Ok(v) => fail(Outcome::Ok(v)),
        Err(e) if e.certainly_not_applied() => fail(Outcome::Fail(e.tag())),
        Err(e) => fail(Outcome::Info(e.tag())),
    }
}
