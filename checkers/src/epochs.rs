//! epochs: no node grants two votes in one epoch; no two masters hold the same slot
//! with the same configEpoch in any snapshot round; every promotion was backed by a
//! majority of masters' votes; currentEpoch never goes down while a node runs, nor
//! across a restart below an epoch the node acted on.

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::convergence::rounds;
use crate::run_data::{Ev, RunData};
use crate::verdict::Valid;

/// The checker's result.
#[derive(Debug, Serialize)]
pub struct Epochs {
    pub valid: Valid,
    pub votes: usize,
    pub promotions: usize,
    pub rounds_checked: usize,
    pub violations: Vec<Value>,
    pub unknown: Vec<String>,
}

/// Runs the checker.
pub fn check(d: &RunData) -> Epochs {
    let mut r = Epochs {
        valid: Valid::True,
        votes: 0,
        promotions: 0,
        rounds_checked: 0,
        violations: vec![],
        unknown: vec![],
    };
    // Votes, promotions and epochs come from the event logs; a clash of configEpochs
    // from the snapshots. Judge neither from a partial file.
    if let Some(why) = d.events_unusable().or_else(|| d.snapshots_unusable()) {
        r.valid = Valid::Unknown;
        r.unknown.push(format!("not judged: {why}"));
        return r;
    }
    double_votes(d, &mut r);
    slot_epoch_clashes(d, &mut r);
    promotions(d, &mut r);
    epochs_monotonic(d, &mut r);
    r.violations.truncate(50);
    r.unknown.truncate(50);
    if !r.violations.is_empty() {
        r.valid = Valid::False;
    } else if !r.unknown.is_empty() {
        r.valid = Valid::Unknown;
    }
    r
}

fn double_votes(d: &RunData, r: &mut Epochs) {
    // node -> epoch -> candidates voted for
    let mut seen: BTreeMap<(&str, u64), Vec<String>> = BTreeMap::new();
    for e in &d.events {
        if let Ev::VoteGranted { to, epoch } = &e.ev {
            r.votes += 1;
            let Some(ep) = epoch else { continue };
            let v = seen.entry((e.node.as_str(), *ep)).or_default();
            v.push(d.name(to));
            if v.len() == 2 {
                r.violations.push(json!({
                    "node": e.node, "epoch": ep, "voted_for": v.clone(),
                    "effect": format!("{} granted two votes in epoch {ep}", e.node),
                }));
            }
        }
    }
}

fn slot_epoch_clashes(d: &RunData, r: &mut Epochs) {
    for rd in rounds(&d.snapshots) {
        r.rounds_checked += 1;
        // slot -> (owner, epoch, seen on), owners interned per round: a round has a
        // few owners but 16384 slots, and this runs once per snapshot round.
        let mut ids: Vec<&str> = Vec::new();
        let mut claims: Vec<Option<(usize, u64, usize)>> = vec![None; 16384];
        let mut found = false;
        for (si, s) in rd.iter().enumerate() {
            let Some(view) = &s.lines else { continue };
            for l in view.iter().filter(|l| l.master) {
                let id = match ids.iter().position(|x| *x == l.id) {
                    Some(i) => i,
                    None => {
                        ids.push(&l.id);
                        ids.len() - 1
                    }
                };
                for (a, b) in &l.slots {
                    for slot in *a..=*b {
                        let Some(c) = claims.get_mut(usize::from(slot)) else {
                            continue;
                        };
                        match *c {
                            Some((o, ep, on)) if o != id && ep == l.config_epoch => {
                                let owner = ids.get(o).copied().unwrap_or("");
                                let seen_on = rd.get(on).map(|x| x.node.as_str()).unwrap_or("");
                                r.violations.push(json!({
                                    "t_ms": s.t_ms, "slot": slot, "config_epoch": ep,
                                    "owners": [d.name(owner), d.name(&l.id)],
                                    "seen_on": [seen_on, s.node],
                                    "effect": format!("two masters hold slot {slot} with configEpoch {ep}"),
                                }));
                                found = true;
                                break;
                            }
                            Some(_) => {}
                            None => *c = Some((id, l.config_epoch, si)),
                        }
                    }
                    if found {
                        break;
                    }
                }
                if found {
                    break;
                }
            }
        }
        if r.violations.len() >= 10 {
            return;
        }
    }
}

fn promotions(d: &RunData, r: &mut Epochs) {
    let w = d.node_timeout_ms.saturating_mul(2);
    for node in &d.nodes {
        let mut epoch: Option<u64> = None;
        for e in d.events_of(node) {
            match &e.ev {
                Ev::FailoverStarted { epoch: ep, .. } => epoch = *ep,
                Ev::FailoverWon { .. } => {
                    r.promotions += 1;
                    let Some(ep) = epoch else {
                        r.unknown.push(format!(
                            "{node} won a failover with no election epoch logged"
                        ));
                        continue;
                    };
                    let Some(my_id) = d
                        .names
                        .iter()
                        .find(|(_, n)| *n == node)
                        .map(|(id, _)| id.clone())
                    else {
                        r.unknown.push(format!("{node}: ID unknown"));
                        continue;
                    };
                    let mut voters: Vec<String> = d
                        .events
                        .iter()
                        .filter(|v| matches!(&v.ev, Ev::VoteGranted { to, epoch: Some(x) } if *to == my_id && *x == ep))
                        .map(|v| v.node.clone())
                        .collect();
                    voters.sort();
                    voters.dedup();
                    let t = e.t_ms.unwrap_or(0);
                    let size = d
                        .snapshot_before(node, t)
                        .and_then(|s| s.lines.as_ref())
                        .map(|l| l.iter().filter(|n| n.master && n.slot_count() > 0).count());
                    let Some(size) = size else {
                        r.unknown
                            .push(format!("{node}: masters with slots unknown at promotion"));
                        continue;
                    };
                    let needed = size / 2 + 1;
                    let missing_logs = d
                        .nodes
                        .iter()
                        .any(|n| !d.events.iter().any(|x| &x.node == n));
                    if voters.len() < needed {
                        let ev = json!({
                            "node": node, "epoch": ep, "t_ms": e.t_ms, "votes_from": voters,
                            "needed": needed,
                            "effect": format!("promoted with {} of {needed} needed votes", voters.len()),
                        });
                        if missing_logs {
                            r.unknown.push(ev.to_string());
                        } else {
                            r.violations.push(ev);
                        }
                    }
                    let _ = w;
                }
                _ => {}
            }
        }
    }
}

/// currentEpoch never goes down while a node runs. Across a restart it may fall back
/// to what the node last wrote to nodes.conf: redis, like hearsay, saves a
/// currentEpoch learnt from a header lazily, so a SIGKILL can lose that bump, which
/// is harmless. It must not fall below an epoch the node acted on (a vote granted,
/// an election started, its own configEpoch), because those are saved and fsynced
/// before the node acts: falling below one would let it vote or elect twice.
fn epochs_monotonic(d: &RunData, r: &mut Epochs) {
    for node in &d.nodes {
        // Highest epoch seen in the current lifetime of the process.
        let mut last: Option<u64> = None;
        // Highest epoch the node acted on (so must have persisted).
        let mut durable: u64 = 0;
        let mut restarted = false;
        let mut last_election: Option<u64> = None;
        for e in d.events_of(node) {
            match &e.ev {
                Ev::Started { .. } => {
                    restarted = last.is_some();
                    last = None;
                }
                Ev::CurrentEpoch { from, to, reason } => {
                    if reason == "reset_hard" {
                        last = Some(*to);
                        durable = *to;
                        continue;
                    }
                    if restarted {
                        restarted = false;
                        // `from` is what the restarted node loaded.
                        if let Some(loaded) = from.filter(|f| *f < durable) {
                            r.violations.push(json!({
                                "node": node, "t_ms": e.t_ms, "loaded": loaded, "durable": durable,
                                "effect": format!(
                                    "currentEpoch went down across a restart on {node}: loaded {loaded}, below epoch {durable} it had acted on"
                                ),
                            }));
                        }
                    } else {
                        let prev = last.or(*from);
                        let went_down = *to < prev.unwrap_or(0)
                            || from.is_some_and(|f| last.is_some_and(|l| f < l));
                        if went_down {
                            r.violations.push(json!({
                                "node": node, "t_ms": e.t_ms, "from": from, "to": to, "last_seen": last,
                                "effect": format!("currentEpoch went down on {node}"),
                            }));
                        }
                    }
                    last = Some((*to).max(last.unwrap_or(0)));
                }
                Ev::FailoverStarted {
                    epoch: Some(ep), ..
                } => {
                    // Each election bumps currentEpoch: election epochs strictly grow.
                    if last_election.is_some_and(|l| *ep <= l) || last.is_some_and(|l| *ep < l) {
                        r.violations.push(json!({
                            "node": node, "t_ms": e.t_ms, "epoch": ep, "previous": last_election,
                            "effect": format!("election epoch did not grow on {node}"),
                        }));
                    }
                    last_election = Some(*ep);
                    last = Some((*ep).max(last.unwrap_or(0)));
                    durable = durable.max(*ep);
                }
                Ev::VoteGranted {
                    epoch: Some(ep), ..
                } => durable = durable.max(*ep),
                Ev::ConfigEpoch { node: whose, to }
                    if whose.as_ref().is_none_or(|id| d.name(id) == *node) =>
                {
                    durable = durable.max(*to)
                }
                _ => {}
            }
        }
    }
}
