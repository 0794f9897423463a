//! The claims model: every data anomaly a checker found (a lost or stale element, a
//! non-linearizable key, a counter out of bounds, a list-append anomaly) is either
//! *explained* by a mechanism the target's documentation admits, with the evidence
//! that shows the mechanism at work, or *unexplained*.
//!
//! The mechanisms are data ([`REDIS_CLUSTER`]), not code scattered in checkers. For a
//! write that an anomaly shows lost, the evidence is: the node that acknowledged it and
//! when (the history's `node` and time), where its slot's ownership went afterwards
//! (snapshot rounds, election events), the replication offsets of the old master and
//! the promoted replica (INFO replication samples, the offset each replica logs when it
//! schedules its election), and the faults that cut the node off (the nemesis's
//! windows). Under `redis-cluster` claims a run is invalid only on unexplained
//! anomalies; under `linearizable` claims (Jepsen's judgement) every anomaly counts.
//!
//! Missing evidence never explains an anomaly by itself, and never turns an explained
//! one into a violation: a mechanism whose evidence is partial says so in its record.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::history::{Op, OpType};
use crate::verdict::Valid;

pub use crate::claims_facts::Facts;

/// Which promises a run is judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// What Redis Cluster documents: asynchronous replication, a minority master that
    /// keeps accepting writes for node_timeout; losses it admits are explained.
    RedisCluster,
    /// Jepsen's judgement: any anomaly is a violation.
    Linearizable,
}

impl Model {
    pub fn parse(s: &str) -> Option<Model> {
        match s {
            "redis-cluster" => Some(Model::RedisCluster),
            "linearizable" => Some(Model::Linearizable),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Model::RedisCluster => "redis-cluster",
            Model::Linearizable => "linearizable",
        }
    }
}

/// One documented mechanism of loss or staleness.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Mechanism {
    pub name: &'static str,
    /// What the documentation says, in short.
    pub documented: &'static str,
    /// The evidence this model requires before it explains an anomaly by it.
    pub evidence: &'static str,
}

/// Redis Cluster's documented mechanisms (cluster-spec, "Write safety").
pub const REDIS_CLUSTER: &[Mechanism] = &[
    Mechanism {
        name: "async-replication",
        documented: "a master acknowledges a write before its replicas have it; a failover \
                     that promotes a replica without the write discards it",
        evidence: "the write acknowledged by the slot's master; a later failover of that \
                   slot to another node; no offset evidence that the promoted replica had it",
    },
    Mechanism {
        name: "minority-master",
        documented: "a master cut off from the majority of masters keeps accepting writes \
                     until node_timeout after the cut, then refuses them; the majority side \
                     fails it over and its writes are lost",
        evidence: "the acknowledging master cut off from the majority of masters at the \
                   ack (partition, pause or kill windows), the ack within node_timeout (plus \
                   slack) of the cut",
    },
    Mechanism {
        name: "stale-master-rejoin",
        documented: "a master that returns after being failed over still claims its slots \
                     until the cluster tells it otherwise (UPDATE, gossip); what it \
                     acknowledges in that window is lost",
        evidence: "the slot owned by another node in the majority's view at the ack; the \
                   acknowledging node back from a fault within 2 x node_timeout of the ack",
    },
    Mechanism {
        name: "no-persistence",
        documented: "without appendonly, a killed master restarts empty",
        evidence: "appendonly no; the acknowledging master killed after the ack",
    },
];

/// Redis Sentinel's documented mechanisms (sentinel docs, "Consistency under
/// partitions"; replication docs, "Allow writes only with N attached replicas").
pub const SENTINEL: &[Mechanism] = &[
    Mechanism {
        name: "async-replication",
        documented: "replication is asynchronous: a failover promotes a replica that may \
                     not have every write the old master acknowledged; those writes are lost",
        evidence: "the write acknowledged by the master of the time; the sentinels' majority \
                   naming another master after the ack; no offset evidence that the promoted \
                   replica had it",
    },
    Mechanism {
        name: "partitioned-master",
        documented: "a master partitioned away from the majority of sentinels keeps accepting \
                     writes (clients that still reach it write on); the majority fails it over \
                     and, when the partition heals, turns it into a replica of the new master, \
                     discarding those writes. With min-replicas-to-write N it stops within \
                     min-replicas-max-lag (10 s) once its replicas are cut off",
        evidence: "the acknowledging master cut off from the majority of sentinels at the ack \
                   (partition, pause or kill windows); another master named after it; with \
                   min-replicas-to-write, the ack within 10 s (plus slack) of losing its replicas",
    },
    Mechanism {
        name: "stale-master-rejoin",
        documented: "an old master that comes back (restart, healed partition, resumed pause) is \
                     a master until a sentinel reconfigures it as a replica; what it acknowledges \
                     meanwhile is lost",
        evidence: "at the ack the sentinels' majority named another master, or the acknowledging \
                   node came back from a fault shortly before the ack and was demoted after it",
    },
    Mechanism {
        name: "no-persistence",
        documented: "without appendonly a killed master restarts empty (and its replicas resync \
                     from it if it comes back before a failover)",
        evidence: "appendonly no; the acknowledging node killed after the ack",
    },
];

/// twemproxy's documented mechanisms (nutcracker's README and notes/recommendation.md:
/// no replication, `auto_eject_hosts` reshards keys while a server is ejected).
pub const TWEMPROXY: &[Mechanism] = &[
    Mechanism {
        name: "no-persistence",
        documented: "twemproxy does not replicate: a shard that restarts without persistence \
                     has lost every key it held",
        evidence: "appendonly no; the shard that held the key killed after the ack",
    },
    Mechanism {
        name: "auto-eject-remap",
        documented: "with auto_eject_hosts a failing shard leaves the hash ring for \
                     server_retry_timeout; its keys map to other shards meanwhile and back \
                     when it returns, so writes of either period are not seen in the other \
                     (documented as a cache's behaviour)",
        evidence: "auto_eject_hosts on; the key held by more than one shard over the run's \
                   snapshots, with a fault on a shard that held it",
    },
];

/// The mechanisms a target's documentation admits.
pub fn table(target: &str) -> &'static [Mechanism] {
    match target {
        "redis" | "hearsay" | "mixed" | "sim" => REDIS_CLUSTER,
        "sentinel" => SENTINEL,
        "twemproxy" => TWEMPROXY,
        _ => &[],
    }
}

/// The name of a target's documented claims, for verdict lines.
pub fn claims_name(target: &str) -> &'static str {
    match target {
        "sentinel" => "sentinel",
        "twemproxy" => "twemproxy",
        _ => "redis-cluster",
    }
}

/// One anomaly, as the claims model judges it.
#[derive(Clone, Debug, Serialize)]
pub struct Anomaly {
    /// `lost`, `stale-read`, `nonlinearizable`, `counter-low`, `counter-high`,
    /// `unexpected`, `failed-present`, `lost-append`, `incompatible-order`, `cycle`, ...
    pub kind: String,
    pub key: String,
    /// What happened, in words.
    pub what: String,
    /// History indexes of the ok completions of the writes at stake (whose loss the
    /// anomaly shows, or which a read missed).
    pub acks: Vec<u64>,
    /// Where in the history the anomaly shows (a read, a failing op), for time spans.
    pub at: Option<u64>,
    /// A mechanism can never produce this (an element nobody wrote, a failed write
    /// that happened, a counter above every possible sum).
    pub impossible: bool,
}

/// The verdict on one anomaly.
#[derive(Clone, Debug, Serialize)]
pub struct Attribution {
    #[serde(flatten)]
    pub anomaly: Anomaly,
    pub explained: bool,
    pub mechanism: Option<&'static str>,
    pub evidence: Value,
}

/// The claims judgement of one run.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimsResult {
    /// The model the run's verdict uses.
    pub model: Model,
    pub valid: Valid,
    /// Both judgements, whatever the model.
    pub redis_cluster: Valid,
    pub linearizable: Valid,
    pub anomalies: usize,
    pub explained: usize,
    pub unexplained: usize,
    pub by_mechanism: BTreeMap<String, usize>,
    /// Distinct slot-ownership changes (failovers) the explanations rely on.
    pub failovers: usize,
    /// What a linearizable (consensus-based) store would have ruled out.
    pub linearizable_contrast: Value,
    /// One line for people.
    pub summary: String,
    /// Every unexplained anomaly (capped at 50), then a few explained ones.
    pub unexplained_examples: Vec<Attribution>,
    pub explained_examples: Vec<Attribution>,
    pub notes: Vec<String>,
}

/// Slot of a workload key (hash tags as redis computes them).
fn slot_of(key: &str) -> u16 {
    hearsay_node::slots::key_slot(key.as_bytes())
}

/// Why one acknowledged write might be lost: the mechanism and its evidence, or the
/// evidence against every mechanism.
fn explain_lost_ack(f: &Facts, key: &str, ack: u64) -> (Option<&'static str>, Value) {
    match f.d.target.as_str() {
        "sentinel" => return crate::claims_standalone::sentinel_lost_ack(f, key, ack),
        "twemproxy" => return crate::claims_standalone::twemproxy_lost_ack(f, key, ack),
        _ => {}
    }
    let slot = slot_of(key);
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
    let mut ev =
        json!({"key": key, "slot": slot, "acked_by": node, "invoked_ms": ti, "acked_ms": ta});
    let changes = f.failovers_after(slot, ti);
    let moved: Vec<Value> = f
        .d
        .moves
        .iter()
        .filter(|m| m.slot == slot)
        .map(|m| json!({"from": m.from, "to": m.to, "opened_ms": m.opened_ms, "closed_ms": m.closed_ms}))
        .collect();
    if !moved.is_empty() {
        ev["slot_moves"] = json!(moved);
        ev["slot_moves_note"] =
            json!("a migration moves the keys with the slot: it explains no loss");
    }
    let failover = changes.first().map(|(t, prev, new)| {
        let when = f.win_time(new, *t).unwrap_or(*t);
        json!({"slot_moved_to": f.name_of(new), "from": prev.as_ref().map(|p| f.name_of(p)),
               "seen_ms": t, "won_ms": when})
    });
    ev["failover"] = failover.clone().unwrap_or(Value::Null);
    // Minority: cut off from the majority of masters at the ack.
    if let Some(cut) = f.cut_since(&node, ta) {
        ev["cut_off_since_ms"] = json!(cut);
        ev["node_timeout_ms"] = json!(nt);
        // A paused master's cron does not run: node_timeout counts its running
        // time, and on SIGCONT it serves the requests queued meanwhile before its
        // first cron can see it is in the minority (redis does the same).
        let paused = f.paused_within(&node, cut, ta);
        if paused > 0 {
            ev["paused_ms"] = json!(paused);
        }
        // Its clock stepped back: stored pong times lie in the future, and it
        // cannot see the others time out for the step (redis alike).
        let blind = f.blind_within(&node, cut, ta);
        if blind > 0 {
            ev["clock_step_blind_ms"] = json!(blind);
        }
        let limit = cut + nt + f.slack_ms + paused + blind;
        if ta <= limit {
            return (Some("minority-master"), ev);
        }
        ev["why"] = json!(format!(
            "{node} acknowledged the write {} ms after it was cut off from the majority of \
             masters ({paused} ms of it paused, {blind} ms blind after a backward clock \
             step); Redis Cluster stops a minority master's \
             writes after node_timeout ({nt} ms, {} ms slack) of its running time",
            ta - cut,
            f.slack_ms
        ));
        return (None, ev);
    }
    // The slot already belonged to someone else when this node acknowledged.
    let owner = f.owner_at(slot, ta);
    if let Some(o) = &owner {
        if !f.is_node(o, &node) {
            ev["owner_at_ack"] = json!(f.name_of(o));
            if let Some(back) = f.back_from_fault(&node, ta) {
                ev["back_from_fault_ms"] = json!(back);
                if ta - back <= 2 * nt + f.slack_ms {
                    return (Some("stale-master-rejoin"), ev);
                }
            }
        }
    }
    // A failover after the write.
    if let Some((t, _prev, new)) = changes.first() {
        let new_name = f.name_of(new);
        let won = f.win_time(new, *t).unwrap_or(*t);
        let (before, after) = f.offset_around(&node, ta);
        let election = f.election_offset(&new_name, won);
        let replica_replid = f.replid_before(&new_name, won);
        ev["offsets"] = json!({
            "master_before_invoke": before.map(|b| b.0),
            "master_after_ack": after.map(|a| a.0),
            "promoted_at_election": election,
        });
        let same_history = match (after, replica_replid) {
            (Some((_, a)), Some(r)) => !a.is_empty() && a == r,
            _ => false,
        };
        if let (Some((off_after, _)), Some(e)) = (after, election) {
            if same_history && e >= off_after {
                ev["why"] = json!(format!(
                    "the promoted replica {new_name} had replicated up to offset {e}, past the \
                     master's offset {off_after} sampled after the ack: it had the write, so \
                     the failover does not explain its loss"
                ));
                return (None, ev);
            }
        }
        ev["offset_evidence"] = json!(match (before, election) {
            (Some((b, _)), Some(e)) if same_history && e <= b =>
                "the promoted replica's offset was at or below the master's offset before the write",
            _ if election.is_some() && after.is_some() =>
                "inconclusive (offsets sampled once a second)",
            _ => "not available",
        });
        return (Some("async-replication"), ev);
    }
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
        "no failover of the slot after the write, the node was not cut off from the majority, \
         and it owned the slot: no documented mechanism loses this write"
    );
    (None, ev)
}

/// Whether the key's slot changed owner, or a node touching it was in a minority
/// window, within `[from, to]` (for anomalies that show a split history rather than
/// one lost write).
fn split_within(f: &Facts, key: &str, from: i64, to: i64) -> Option<(&'static str, Value)> {
    match f.d.target.as_str() {
        "sentinel" => return crate::claims_standalone::sentinel_split(f, from, to),
        "twemproxy" => return crate::claims_standalone::twemproxy_split(f, key),
        _ => {}
    }
    let slot = slot_of(key);
    if let Some((t, prev, new)) = f
        .failovers_after(slot, from)
        .into_iter()
        .find(|(t, _, _)| *t <= to + f.d.node_timeout_ms)
    {
        return Some((
            "async-replication",
            json!({"slot": slot, "slot_moved_to": f.name_of(&new),
                   "from": prev.map(|p| f.name_of(&p)), "seen_ms": t}),
        ));
    }
    None
}

fn judge_one(f: &Facts, a: Anomaly) -> Attribution {
    if a.impossible {
        return Attribution {
            anomaly: a,
            explained: false,
            mechanism: None,
            evidence: json!({"why": "no documented mechanism produces this"}),
        };
    }
    match a.kind.as_str() {
        "lost" | "lost-append" | "counter-low" => {
            // Every write at stake must be explainable for the anomaly to be (for a
            // counter, enough of them to cover the shortfall: see `counter_low`).
            let mut mech = None;
            let mut evs = Vec::new();
            let mut all = !a.acks.is_empty();
            for ack in &a.acks {
                let (m, e) = explain_lost_ack(f, &a.key, *ack);
                evs.push(e);
                match m {
                    Some(m) => mech = mech.or(Some(m)),
                    None => all = false,
                }
            }
            let explained = if a.kind == "counter-low" {
                mech.is_some()
            } else {
                all
            };
            Attribution {
                explained,
                mechanism: explained.then_some(mech).flatten(),
                evidence: Value::Array(evs.into_iter().take(5).collect()),
                anomaly: a,
            }
        }
        _ => {
            // Stale reads and split histories: a failover of the key's slot between
            // the first write at stake and the read that shows the anomaly.
            let times: Vec<i64> = a.acks.iter().filter_map(|i| f.time_ms(*i)).collect();
            let end = a.at.and_then(|i| f.time_ms(i));
            let (from, to) = match (times.iter().min(), end) {
                (Some(s), Some(e)) => (*s, e),
                (None, Some(e)) => (e - 30_000, e),
                (Some(s), None) => (*s, *s + 30_000),
                (None, None) => {
                    return Attribution {
                        anomaly: a,
                        explained: false,
                        mechanism: None,
                        evidence: json!({"why": "the anomaly names no op to place it in time"}),
                    }
                }
            };
            // A read that missed writes each explained as lost by a documented
            // mechanism shows that loss, nothing more.
            if a.kind == "stale-read" && !a.acks.is_empty() {
                let lost: Vec<(Option<&'static str>, Value)> = a
                    .acks
                    .iter()
                    .map(|ack| explain_lost_ack(f, &a.key, *ack))
                    .collect();
                if let Some(m) = lost.iter().map(|(m, _)| *m).collect::<Option<Vec<_>>>() {
                    return Attribution {
                        explained: true,
                        mechanism: m.first().copied(),
                        evidence: Value::Array(lost.into_iter().map(|(_, e)| e).take(5).collect()),
                        anomaly: a,
                    };
                }
            }
            // The reader or a writer in a minority window also splits the history.
            let minority = (!f.d.is_standalone())
                .then_some(())
                .and(a.at)
                .and_then(|i| f.ops.get(&i))
                .and_then(|o| o.node.clone())
                .and_then(|n| f.cut_since(&n, to).map(|c| (n, c)));
            match (split_within(f, &a.key, from, to), minority) {
                (Some((m, e)), _) => Attribution {
                    anomaly: a,
                    explained: true,
                    mechanism: Some(m),
                    evidence: e,
                },
                (None, Some((n, c))) => Attribution {
                    anomaly: a,
                    explained: true,
                    mechanism: Some("minority-master"),
                    evidence: json!({"node": n, "cut_off_since_ms": c}),
                },
                (None, None) => Attribution {
                    anomaly: a,
                    explained: false,
                    mechanism: None,
                    evidence: json!({"why": "no failover of the key's slot and no minority window around it",
                                     "from_ms": from, "to_ms": to}),
                },
            }
        }
    }
}

/// Judges the anomalies of one run under `model`.
pub fn judge(model: Model, target: &str, anomalies: Vec<Anomaly>, f: &Facts) -> ClaimsResult {
    let mechanisms = table(target);
    let mut notes = Vec::new();
    if mechanisms.is_empty() && !anomalies.is_empty() {
        notes.push(format!(
            "no claims table for target {target:?}: nothing is explained"
        ));
    }
    let total = anomalies.len();
    let mut atts: Vec<Attribution> = anomalies
        .into_iter()
        .map(|a| {
            let mut at = judge_one(f, a);
            // A mechanism the target does not document explains nothing.
            if at.explained && !mechanisms.iter().any(|m| Some(m.name) == at.mechanism) {
                at.explained = false;
            }
            at
        })
        .collect();
    atts.sort_by_key(|a| a.explained);
    let explained = atts.iter().filter(|a| a.explained).count();
    let unexplained = total - explained;
    let mut by_mechanism: BTreeMap<String, usize> = BTreeMap::new();
    let mut failovers: std::collections::BTreeSet<String> = Default::default();
    for a in atts.iter().filter(|a| a.explained) {
        if let Some(m) = a.mechanism {
            *by_mechanism.entry(m.to_string()).or_default() += 1;
        }
        let evs = match &a.evidence {
            Value::Array(v) => v.clone(),
            e => vec![e.clone()],
        };
        for e in evs {
            let fo = if e["failover"].is_object() {
                &e["failover"]
            } else {
                &e
            };
            if let (Some(to), Some(t)) = (fo["slot_moved_to"].as_str(), fo["seen_ms"].as_i64()) {
                failovers.insert(format!("{to}@{}", t / 1000));
            }
        }
    }
    let redis_cluster = if unexplained > 0 {
        Valid::False
    } else {
        Valid::True
    };
    let linearizable = if total > 0 { Valid::False } else { Valid::True };
    let valid = match model {
        Model::RedisCluster => redis_cluster,
        Model::Linearizable => linearizable,
    };
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for a in &atts {
        *kinds.entry(a.anomaly.kind.clone()).or_default() += 1;
    }
    let summary = summary_line(
        claims_name(target),
        redis_cluster,
        total,
        unexplained,
        &kinds,
        &by_mechanism,
        failovers.len(),
    );
    ClaimsResult {
        model,
        valid,
        redis_cluster,
        linearizable,
        anomalies: total,
        explained,
        unexplained,
        by_mechanism,
        failovers: failovers.len(),
        linearizable_contrast: json!({
            "ruled_out": total,
            "kinds": kinds,
            "text": if total == 0 {
                "no anomaly: this run shows nothing a linearizable store would have ruled out".to_string()
            } else {
                format!("a linearizable (consensus-based) store would have ruled out all {total} anomalies ({}): it refuses writes it cannot replicate to a majority instead of acknowledging them",
                    kinds.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "))
            },
        }),
        summary,
        unexplained_examples: atts
            .iter()
            .filter(|a| !a.explained)
            .take(50)
            .cloned()
            .collect(),
        explained_examples: atts
            .iter()
            .filter(|a| a.explained)
            .take(10)
            .cloned()
            .collect(),
        notes,
    }
}

fn summary_line(
    claims: &str,
    rc: Valid,
    total: usize,
    unexplained: usize,
    kinds: &BTreeMap<String, usize>,
    by_mechanism: &BTreeMap<String, usize>,
    failovers: usize,
) -> String {
    let what = kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let how = by_mechanism
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let via = if failovers > 0 {
        format!(" across {failovers} failover(s)")
    } else {
        String::new()
    };
    match (rc, total) {
        (_, 0) => format!("valid under {claims} claims; no anomaly; linearizable"),
        (Valid::True, _) => format!(
            "valid under {claims} claims; {what}, all explained ({how}){via}; not linearizable"
        ),
        _ => format!(
            "INVALID under {claims} claims: {unexplained} of {total} anomalies unexplained ({what}){}; not linearizable",
            if how.is_empty() { String::new() } else { format!("; explained: {how}") }
        ),
    }
}

/// Anomalies of the set workload: each lost element (its ack), each stale read (the
/// acks it missed), and the impossible ones.
pub fn set_anomalies(r: &crate::set::SetResult) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for l in &r.lost_all {
        out.push(Anomaly {
            kind: "lost".into(),
            key: l.key.clone(),
            what: format!(
                "element {} acknowledged, absent from the final read",
                l.element
            ),
            acks: vec![l.ack],
            at: None,
            impossible: false,
        });
    }
    for s in &r.stale_all {
        out.push(Anomaly {
            kind: "stale-read".into(),
            key: s.key.clone(),
            what: format!(
                "a read missed {} acknowledged element(s)",
                s.missed_acks.len()
            ),
            acks: s.missed_acks.clone(),
            at: Some(s.read),
            impossible: false,
        });
    }
    for (kind, els) in [
        ("unexpected", &r.unexpected),
        ("failed-present", &r.failed_present),
    ] {
        if els.count > 0 {
            out.push(Anomaly {
                kind: kind.into(),
                key: String::new(),
                what: format!("{} element(s), e.g. {:?}", els.count, els.examples),
                acks: vec![],
                at: None,
                impossible: true,
            });
        }
    }
    out
}

/// Anomalies of the register workload: each key that cannot be linearized, with the
/// writes in its smallest failing window.
pub fn register_anomalies(r: &crate::linear::LinearResult) -> Vec<Anomaly> {
    r.evidence
        .iter()
        .map(|e| Anomaly {
            kind: "nonlinearizable".into(),
            key: e.key.clone(),
            what: format!("{} ops cannot be linearized", e.window.len()),
            acks: e.window.iter().filter_map(|x| x.complete).collect(),
            at: e
                .failed_at
                .as_ref()
                .and_then(|x| x.complete.or(Some(x.invoke))),
            impossible: false,
        })
        .collect()
}

/// Anomalies of the counter workload: a read below every possible sum is a loss (of
/// some acknowledged increments); above every possible sum is impossible.
pub fn counter_anomalies(r: &crate::counter::CounterResult) -> Vec<Anomaly> {
    r.errors_all
        .iter()
        .map(|b| {
            let low = i128::from(b.value) < b.lower;
            Anomaly {
                kind: if low { "counter-low" } else { "counter-high" }.into(),
                key: b.key.clone(),
                what: format!("read {} outside [{}, {}]", b.value, b.lower, b.upper),
                acks: b.acks_before.clone(),
                at: Some(b.index),
                impossible: !low,
            }
        })
        .collect()
}

/// Anomalies of the list-append workload.
pub fn list_append_anomalies(r: &crate::list_append::ListAppendResult) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for a in &r.lost_all {
        out.push(Anomaly {
            kind: "lost-append".into(),
            key: a.key.clone(),
            what: a.detail.clone(),
            acks: vec![a.index],
            at: None,
            impossible: false,
        });
    }
    for a in &r.incompatible_all {
        out.push(Anomaly {
            kind: "incompatible-order".into(),
            key: a.key.clone(),
            what: a.detail.clone(),
            acks: vec![],
            at: Some(a.index),
            impossible: false,
        });
    }
    for c in &r.cycles {
        let key = c
            .steps
            .first()
            .and_then(|(_, k)| k.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string();
        out.push(Anomaly {
            kind: "cycle".into(),
            key,
            what: format!("dependency cycle of {} txns", c.steps.len()),
            acks: c.steps.iter().map(|(i, _)| *i).collect(),
            at: c.steps.iter().map(|(i, _)| *i).max(),
            impossible: false,
        });
    }
    for (kind, list) in [
        ("duplicate", &r.duplicates),
        ("garbage", &r.garbage),
        ("aborted-read", &r.aborted),
    ] {
        for a in list {
            out.push(Anomaly {
                kind: kind.into(),
                key: a.key.clone(),
                what: a.detail.clone(),
                acks: vec![],
                at: Some(a.index),
                impossible: true,
            });
        }
    }
    if r.cycles_total > r.cycles.len() {
        out.push(Anomaly {
            kind: "cycle".into(),
            key: String::new(),
            what: format!(
                "{} more cycles not listed (attribution needs each one)",
                r.cycles_total - r.cycles.len()
            ),
            acks: vec![],
            at: None,
            impossible: true,
        });
    }
    out
}

/// Reads the options the claims judgement needs from test.json.
pub fn appendonly(test: &Value) -> bool {
    test["options"]["appendonly"].as_str() != Some("no")
}

/// Whether an op is an acknowledged write of a workload (for minority-ack counts).
pub fn is_ok_write(op: &Op) -> bool {
    op.kind == OpType::Ok && matches!(op.f.as_str(), "add" | "write" | "cas" | "incr" | "txn")
}
