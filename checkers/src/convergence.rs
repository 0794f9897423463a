//! convergence: after the final heal and a recovery wait, every live node's slot map
//! is identical, every slot has exactly one owner that is a master known to all, no
//! two masters share a configEpoch, all nodes agree on roles, no master has a slot
//! left migrating or importing, and every live node knows the same members (no
//! handshake left, nobody forgotten by some and known by others). Reports the time
//! from the final heal to the first round from which this holds to the end, and
//! fails if that exceeds a bound.

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

use crate::run_data::{NodeLine, RunData, Snapshot};
use crate::verdict::Valid;

const SLOTS: usize = 16384;

/// The checker's result.
#[derive(Debug, Serialize)]
pub struct Convergence {
    pub valid: Valid,
    pub heal_ms: Option<i64>,
    /// Time of the first round after the heal from which every later round agrees.
    pub converged_at_ms: Option<i64>,
    pub convergence_ms: Option<i64>,
    pub bound_ms: i64,
    pub rounds_after_heal: usize,
    /// What disagrees in the last round (empty when converged).
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// The default bound: generous against a failover (node_timeout + election) and a
/// rejoin, derived from node_timeout so slow-timeout runs get more time.
pub fn default_bound_ms(node_timeout_ms: i64) -> i64 {
    (node_timeout_ms.saturating_mul(15)).max(15_000)
}

/// Groups snapshots into rounds: the snapshotter asks every node once per tick in a
/// fixed order, so a node name seen again starts a new round.
pub fn rounds(snaps: &[Snapshot]) -> Vec<Vec<&Snapshot>> {
    let mut out: Vec<Vec<&Snapshot>> = Vec::new();
    let mut cur: Vec<&Snapshot> = Vec::new();
    for s in snaps {
        if cur.iter().any(|c| c.node == s.node) {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(s);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn slot_map(view: &[NodeLine]) -> Vec<Option<&str>> {
    let mut m = vec![None; SLOTS];
    for n in view {
        for (a, b) in &n.slots {
            for s in *a..=*b {
                if let Some(x) = m.get_mut(usize::from(s)) {
                    *x = Some(n.id.as_str());
                }
            }
        }
    }
    m
}

/// Problems of one round; empty means converged.
pub fn round_problems(d: &RunData, round: &[&Snapshot]) -> Vec<String> {
    let mut p = Vec::new();
    let views: Vec<(&str, &Vec<NodeLine>)> = round
        .iter()
        .filter_map(|s| s.lines.as_ref().map(|l| (s.node.as_str(), l)))
        .collect();
    if views.is_empty() {
        return vec!["no node answered".into()];
    }
    for s in round.iter().filter(|s| s.lines.is_none()) {
        p.push(format!("{} did not answer CLUSTER NODES", s.node));
    }
    let maps: Vec<(&str, Vec<Option<&str>>)> =
        views.iter().map(|(n, v)| (*n, slot_map(v))).collect();
    let Some((first_node, first)) = maps.first() else {
        return p;
    };
    for (n, m) in maps.iter().skip(1) {
        if let Some(s) = (0..SLOTS).find(|i| m.get(*i) != first.get(*i)) {
            let fmt = |o: Option<&Option<&str>>| {
                o.copied()
                    .flatten()
                    .map_or("none".to_string(), |id| d.name(id))
            };
            p.push(format!(
                "slot maps differ: slot {s} is {} on {first_node} but {} on {n}",
                fmt(first.get(s)),
                fmt(m.get(s))
            ));
        }
    }
    if let Some(s) = first.iter().position(|o| o.is_none()) {
        p.push(format!("slot {s} has no owner on {first_node}"));
    }
    let owners: BTreeSet<&str> = first.iter().flatten().copied().collect();
    for o in &owners {
        for (n, v) in &views {
            match v.iter().find(|l| l.id == *o) {
                None => p.push(format!("owner {} unknown to {n}", d.name(o))),
                Some(l) if !l.master => {
                    p.push(format!("owner {} is not a master on {n}", d.name(o)))
                }
                Some(l) if l.fail => p.push(format!("owner {} flagged fail on {n}", d.name(o))),
                _ => {}
            }
        }
    }
    // A configEpoch decides slot ownership, so masters serving slots must not
    // share one. Slotless masters (a member just added, a master that lost its
    // slots) may share epoch 0 a while: redis-server left two so after a heal
    // past the bound (reshard/member matrix, seed 4), with every slot agreed.
    for (n, v) in &views {
        let mut epochs: BTreeMap<u64, &str> = BTreeMap::new();
        for l in v
            .iter()
            .filter(|l| l.master && !l.handshake && !l.slots.is_empty())
        {
            if let Some(other) = epochs.insert(l.config_epoch, &l.id) {
                p.push(format!(
                    "masters {} and {} share configEpoch {} on {n}",
                    d.name(other),
                    d.name(&l.id),
                    l.config_epoch
                ));
            }
        }
    }
    // Open slots: a reshard or a fix that did not finish.
    for (n, v) in &views {
        if let Some(me) = v.iter().find(|l| l.myself && l.master) {
            for (slot, to) in &me.migrating {
                p.push(format!(
                    "slot {slot} left migrating on {n} (to {})",
                    d.name(to)
                ));
            }
            for (slot, from) in &me.importing {
                p.push(format!(
                    "slot {slot} left importing on {n} (from {})",
                    d.name(from)
                ));
            }
        }
    }
    // Members: every live node knows the same nodes, none half-known.
    let members =
        |v: &Vec<NodeLine>| -> BTreeSet<String> { v.iter().map(|l| l.id.clone()).collect() };
    if let Some((fnode, fv)) = views.first() {
        let fm = members(fv);
        for (n, v) in views.iter().skip(1) {
            let m = members(v);
            if m != fm {
                let only: Vec<String> = m.symmetric_difference(&fm).map(|id| d.name(id)).collect();
                p.push(format!(
                    "members differ: {n} knows {} nodes, {fnode} {}; known to one only: {}",
                    m.len(),
                    fm.len(),
                    only.join(", ")
                ));
            }
        }
    }
    for (n, v) in &views {
        if let Some(l) = v.iter().find(|l| l.handshake || l.noaddr) {
            p.push(format!(
                "{n} still lists {} in handshake or without address",
                d.name(&l.id)
            ));
        }
    }
    // Roles: every view must say the same of every node it shares with the first.
    let role = |l: &NodeLine| (l.master, l.master_of.clone());
    if let Some((fnode, fv)) = views.first() {
        for (n, v) in views.iter().skip(1) {
            for l in fv.iter() {
                if let Some(o) = v.iter().find(|x| x.id == l.id) {
                    if role(o) != role(l) {
                        p.push(format!(
                            "roles differ for {}: {fnode} says {}, {n} says {}",
                            d.name(&l.id),
                            role_text(d, l),
                            role_text(d, o)
                        ));
                    }
                }
            }
        }
    }
    p
}

fn role_text(d: &RunData, l: &NodeLine) -> String {
    if l.master {
        "master".into()
    } else {
        format!(
            "replica of {}",
            l.master_of.as_deref().map_or("?".into(), |m| d.name(m))
        )
    }
}

/// Runs the checker; `bound_ms` None takes [`default_bound_ms`].
pub fn check(d: &RunData, bound_ms: Option<i64>) -> Convergence {
    let bound_ms = bound_ms.unwrap_or_else(|| default_bound_ms(d.node_timeout_ms));
    let mut r = Convergence {
        valid: Valid::Unknown,
        heal_ms: d.heal_ms,
        converged_at_ms: None,
        convergence_ms: None,
        bound_ms,
        rounds_after_heal: 0,
        problems: vec![],
        notes: vec![],
    };
    if let Some(why) = d.snapshots_unusable() {
        r.notes.push(format!("not judged: {why}"));
        return r;
    }
    let Some(heal) = d.heal_ms else {
        r.notes
            .push("no final heal in the history (run incomplete)".into());
        return r;
    };
    let all = rounds(&d.snapshots);
    let after: Vec<&Vec<&Snapshot>> = all
        .iter()
        .filter(|rd| rd.iter().all(|s| s.t_ms >= heal))
        .collect();
    r.rounds_after_heal = after.len();
    let Some(last) = after.last() else {
        r.notes
            .push("no snapshot round after the final heal".into());
        return r;
    };
    let last_problems = round_problems(d, last);
    if !last_problems.is_empty() {
        r.problems = last_problems;
        r.problems.truncate(20);
        r.valid = Valid::False;
        return r;
    }
    // Earliest round from which every later round is converged.
    let mut at = last.first().map_or(heal, |s| s.t_ms);
    for rd in after.iter().rev() {
        if round_problems(d, rd).is_empty() {
            at = rd.first().map_or(at, |s| s.t_ms);
        } else {
            break;
        }
    }
    r.converged_at_ms = Some(at);
    r.convergence_ms = Some(at - heal);
    // The harness's final repair (members added back, open slots closed, as
    // redis-cli --cluster fix) changes the cluster after the heal: the bound
    // starts when it is done.
    if let Some(repaired) = d.repaired_ms.filter(|&t| t > heal) {
        r.bound_ms += repaired - heal;
        r.notes.push(format!(
            "bound extended by {} ms: the final repair (members back, open slots closed) ran until {repaired} ms",
            repaired - heal
        ));
    }
    // A clock stepped back blinds the staleness rules for the step: the bound
    // waits out what of that window is left after the heal.
    let blind = d
        .backward_clock_steps()
        .into_iter()
        .filter(|s| s.blind_until() > heal)
        .max_by_key(|s| s.blind_until());
    if let Some(s) = &blind {
        let extra = s.blind_until() - heal;
        r.bound_ms += extra;
        r.notes.push(format!(
            "bound extended by {extra} ms: the clock of {} stepped back {} ms at {} ms, so stored times lay in the future until {} ms (redis compares mstime() with them too)",
            s.nodes.join(","),
            s.step_ms,
            s.at_ms,
            s.blind_until()
        ));
    }
    let bound_ms = r.bound_ms;
    if at - heal > bound_ms {
        r.problems.push(format!(
            "converged {} ms after the final heal, bound {bound_ms} ms",
            at - heal
        ));
        r.valid = Valid::False;
    } else {
        r.valid = Valid::True;
    }
    r
}

/// Compact JSON for results.json.
pub fn to_json(r: &Convergence) -> Value {
    json!(r)
}
