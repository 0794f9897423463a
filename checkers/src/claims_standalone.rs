//! The claims model's evidence for the targets that are not a Redis Cluster: which
//! of Sentinel's and twemproxy's documented mechanisms (the `SENTINEL` and `TWEMPROXY` tables of `claims`)
//! explains a lost write, from the same facts (history, fault windows, snapshots).
//!
//! Sentinel: the master of the time is what the majority of the sentinels named in
//! the snapshots; "cut off" is by the fault windows, counted against the sentinels
//! (who decide a failover) and, with `min-replicas-to-write`, against the replicas.
//! twemproxy: where a key lived is the shards' key lists in the snapshots.
//!

use crate::claims_facts::Facts;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// `min-replicas-max-lag`, as the harness configures it.
const MAX_LAG_MS: i64 = 10_000;

/// The sentinels (node names) seen in the snapshots.
fn sentinels(f: &Facts) -> BTreeSet<String> {
    f.d.sentinel_views
        .iter()
        .map(|(_, s, _)| s.clone())
        .collect()
}

/// The master the majority of the sentinels named at `t` (each sentinel's latest
/// answer at or before `t`).
fn master_at(f: &Facts, t: i64) -> Option<String> {
    let mut latest: BTreeMap<&str, Option<&String>> = BTreeMap::new();
    for (_, s, m) in f.d.sentinel_views.iter().filter(|(ts, _, _)| *ts <= t) {
        latest.insert(s.as_str(), m.as_ref());
    }
    let all = sentinels(f).len();
    let mut count: BTreeMap<&String, usize> = BTreeMap::new();
    for m in latest.values().flatten() {
        *count.entry(*m).or_default() += 1;
    }
    count
        .into_iter()
        .find(|(_, n)| n * 2 > all)
        .map(|(m, _)| m.clone())
}

/// The first time after `t` at which the sentinels' majority named a master other
/// than `node`, and that master.
fn switch_after(f: &Facts, node: &str, t: i64) -> Option<(i64, String)> {
    let mut times: Vec<i64> =
        f.d.sentinel_views
            .iter()
            .map(|(ts, _, _)| *ts)
            .filter(|ts| *ts > t)
            .collect();
    times.sort_unstable();
    times.dedup();
    // The first time after `t` at which another master is named; reported as the
    // time the majority began to name it.
    let all: Vec<i64> = {
        let mut v: Vec<i64> = f.d.sentinel_views.iter().map(|(ts, _, _)| *ts).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let (ts, m) = times
        .into_iter()
        .find_map(|ts| master_at(f, ts).filter(|m| m != node).map(|m| (ts, m)))?;
    // When the majority started naming `m` (one failover, however many acks it
    // explains): walk back while it did.
    let since = all
        .iter()
        .rev()
        .filter(|x| **x <= ts)
        .take_while(|x| master_at(f, **x).as_ref() == Some(&m))
        .last()
        .copied()
        .unwrap_or(ts);
    Some((since, m))
}

/// Data nodes (names) other than `node`: those with replication samples.
fn other_data_nodes(f: &Facts, node: &str) -> BTreeSet<String> {
    f.d.offsets
        .iter()
        .map(|o| o.node.clone())
        .filter(|n| n != node)
        .collect()
}

pub(crate) fn sentinel_lost_ack(f: &Facts, key: &str, ack: u64) -> (Option<&'static str>, Value) {
    let Some(op) = f.ops.get(&ack) else {
        return (None, json!({"why": format!("op {ack} not in the history")}));
    };
    let ta = (op.time / 1_000_000) as i64;
    let ti = f
        .invoke_of
        .get(&ack)
        .and_then(|i| f.time_ms(*i))
        .unwrap_or(ta);
    let Some(node) = op.node.clone() else {
        return (
            None,
            json!({"why": "the history does not name the node that acknowledged the write"}),
        );
    };
    let nt = f.d.node_timeout_ms;
    let mut ev = json!({"key": key, "acked_by": node, "invoked_ms": ti, "acked_ms": ta});
    let named_at_ack = master_at(f, ta);
    ev["master_named_at_ack"] = json!(named_at_ack);
    let switch = switch_after(f, &node, ti);
    ev["failover"] = match &switch {
        // `slot_moved_to`/`seen_ms`: the names the claims summary counts failovers by.
        Some((t, m)) => json!({"slot_moved_to": m, "from": node, "seen_ms": t}),
        None => Value::Null,
    };
    let Some((t_switch, new)) = switch else {
        if !f.appendonly {
            if let Some(k) =
                f.d.faults
                    .iter()
                    .find(|w| w.kind == "kill" && w.start_ms >= ti && w.targets.contains(&node))
            {
                ev["killed_ms"] = json!(k.start_ms);
                return (Some("no-persistence"), ev);
            }
        }
        ev["why"] = json!(
            "the sentinels never named another master after the write and the node was not \
             killed without persistence: no documented mechanism loses this write"
        );
        return (None, ev);
    };
    // Partitioned master: cut off from the majority of the sentinels at the ack.
    let sents = sentinels(f);
    let need = sents.len() / 2 + 1;
    let cut_from_sentinels =
        |x: i64| sents.iter().filter(|s| f.reachable(&node, s, x)).count() < need;
    if let Some(cut) = f.held_since(ta, cut_from_sentinels) {
        ev["cut_off_from_sentinels_since_ms"] = json!(cut);
        let n = f.min_replicas_to_write as usize;
        if n > 0 {
            let replicas = other_data_nodes(f, &node);
            let lonely = |x: i64| replicas.iter().filter(|r| f.reachable(&node, r, x)).count() < n;
            if let Some(rc) = f.held_since(ta, lonely) {
                ev["cut_off_from_replicas_since_ms"] = json!(rc);
                if ta > rc + MAX_LAG_MS + f.slack_ms {
                    ev["why"] = json!(format!(
                        "{node} acknowledged {} ms after losing its replicas; with \
                         min-replicas-to-write {n} it must refuse writes after \
                         min-replicas-max-lag ({MAX_LAG_MS} ms, {} ms slack)",
                        ta - rc,
                        f.slack_ms
                    ));
                    return (None, ev);
                }
            }
        }
        return (Some("partitioned-master"), ev);
    }
    // An old master: the sentinels already named another node at the ack, or it came
    // back from a fault shortly before acknowledging.
    if named_at_ack.as_ref().is_some_and(|m| *m != node) {
        return (Some("stale-master-rejoin"), ev);
    }
    if let Some(back) = f.back_from_fault(&node, ta) {
        if ta - back <= MAX_LAG_MS + 2 * nt + f.slack_ms && t_switch - ta <= MAX_LAG_MS + 2 * nt {
            ev["back_from_fault_ms"] = json!(back);
            return (Some("stale-master-rejoin"), ev);
        }
    }
    // A failover after the write: did the promoted replica have it?
    let (_, after) = f.offset_around(&node, ta);
    let promoted =
        f.d.offsets
            .iter()
            .rfind(|o| o.node == new && o.t_ms <= t_switch)
            .map(|o| (o.offset, o.replid.as_str()));
    ev["offsets"] = json!({"master_after_ack": after.map(|a| a.0),
                           "promoted_before_switch": promoted.map(|p| p.0)});
    if let (Some((ma, ra)), Some((pr, rp))) = (after, promoted) {
        if ra == rp && !ra.is_empty() && pr >= ma {
            ev["why"] = json!(format!(
                "{new} had replicated to offset {pr}, past {node}'s offset {ma} after the ack: \
                 it had the write, so the failover does not explain its loss"
            ));
            return (None, ev);
        }
    }
    (Some("async-replication"), ev)
}

/// A master switch within `[from, to + node_timeout]` splits a key's history.
pub(crate) fn sentinel_split(f: &Facts, from: i64, to: i64) -> Option<(&'static str, Value)> {
    let before = master_at(f, from)?;
    let (t, new) = switch_after(f, &before, from)?;
    (t <= to + f.d.node_timeout_ms).then(|| {
        (
            "async-replication",
            json!({"slot_moved_to": new, "from": before, "seen_ms": t}),
        )
    })
}

/// The shards that held `key` in any snapshot, with the first time each did.
fn holders(f: &Facts, key: &str) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (t, shard, keys) in &f.d.shard_keys {
        if keys.as_ref().is_some_and(|ks| ks.iter().any(|k| k == key)) {
            out.entry(shard.clone()).or_insert(*t);
        }
    }
    out
}

fn faulted(f: &Facts, shards: &BTreeMap<String, i64>) -> Vec<Value> {
    f.d.faults
        .iter()
        .filter(|w| matches!(w.kind.as_str(), "kill" | "pause" | "partition"))
        .filter(|w| w.targets.iter().any(|t| shards.contains_key(t)))
        .map(|w| json!({"kind": w.kind, "start_ms": w.start_ms, "targets": w.targets}))
        .collect()
}

pub(crate) fn twemproxy_lost_ack(f: &Facts, key: &str, ack: u64) -> (Option<&'static str>, Value) {
    let Some(op) = f.ops.get(&ack) else {
        return (None, json!({"why": format!("op {ack} not in the history")}));
    };
    let ta = (op.time / 1_000_000) as i64;
    let ti = f
        .invoke_of
        .get(&ack)
        .and_then(|i| f.time_ms(*i))
        .unwrap_or(ta);
    let held = holders(f, key);
    let mut ev = json!({"key": key, "acked_ms": ta, "held_by": held});
    if !f.appendonly {
        if let Some(k) = f.d.faults.iter().find(|w| {
            w.kind == "kill" && w.start_ms >= ti && w.targets.iter().any(|t| held.contains_key(t))
        }) {
            ev["killed"] = json!({"shards": k.targets, "ms": k.start_ms});
            return (Some("no-persistence"), ev);
        }
    }
    if f.auto_eject && held.len() > 1 {
        let faults = faulted(f, &held);
        if !faults.is_empty() {
            ev["faults_on_holders"] = json!(faults);
            return (Some("auto-eject-remap"), ev);
        }
    }
    ev["why"] = json!(if held.is_empty() {
        "no snapshot shows which shard held the key, and no shard restarted empty"
    } else {
        "the key stayed on one shard and that shard kept its data: no documented mechanism loses this write"
    });
    (None, ev)
}

pub(crate) fn twemproxy_split(f: &Facts, key: &str) -> Option<(&'static str, Value)> {
    let held = holders(f, key);
    if !f.auto_eject || held.len() < 2 {
        return None;
    }
    let faults = faulted(f, &held);
    (!faults.is_empty()).then(|| {
        (
            "auto-eject-remap",
            json!({"held_by": held, "faults_on_holders": faults}),
        )
    })
}
