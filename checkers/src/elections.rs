//! Election rules of redis 7.0, judged from the voters' and candidates' own events and
//! the snapshots:
//!
//! - **vote-conditions** (clusterSendFailoverAuthIfNeeded): a master grants a vote only
//!   when it is a master with slots, the candidate's master is FAIL in its view (unless
//!   a manual failover forces the ack), it has not voted for a replica of that master
//!   within 2 x node_timeout, and the candidate's claimed slots are not older than its
//!   view. The FAIL view, the voter's role and the 2 x node_timeout spacing are judged
//!   for both servers from their logs and snapshots; the slot-epoch condition from the
//!   state hearsay-node reports with each grant.
//! - **won-with-grants**: a replica declares itself elected only after grants from
//!   floor(masters with slots / 2) + 1 masters in its election's epoch, each logged by
//!   its voter before the win.
//! - **failover-liveness**: a master that stays failed (paused, killed, or cut off
//!   from the majority) while one of its replicas can reach a majority of masters is
//!   replaced within a bound derived from node_timeout.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::run_data::{Ev, NodeEvent, RunData};
use crate::verdict::Rule;

/// Cross-node time tolerance (mono stamps of one machine are exact; redis wall stamps
/// under clock faults carry their own slack).
const TOL_MS: i64 = 250;

/// The three rules.
pub fn check(d: &RunData) -> Vec<Rule> {
    let votes = Rule::new(
        "vote-conditions",
        "a vote only from a master with slots, for a replica whose master is FAIL in the voter's view, not within 2 x node_timeout of a vote for that master, claims not older than the voter's",
    );
    let won = Rule::new(
        "won-with-grants",
        "an election won only with grants from a majority of the masters with slots, received before the win",
    );
    let live = Rule::new(
        "failover-liveness",
        "a master that stays failed while a replica of it can reach a majority of masters is replaced within the bound",
    );
    if let Some(why) = d.events_unusable().or_else(|| d.snapshots_unusable()) {
        return vec![
            votes.not_judged(why.clone()),
            won.not_judged(why.clone()),
            live.not_judged(why),
        ];
    }
    vec![
        vote_rule(d, votes),
        won_rule(d, won),
        liveness_rule(d, live),
    ]
}

/// The 40-char ID a node had at `t` (its `myself` line in snapshots, else any).
fn id_of(d: &RunData, node: &str) -> Vec<String> {
    d.names
        .iter()
        .filter(|(_, n)| n.as_str() == node)
        .map(|(id, _)| id.clone())
        .collect()
}

/// The master of replica `id` around `t`, as the replica's own snapshots say (else
/// anyone's).
fn master_of(d: &RunData, id: &str, t: i64) -> Option<String> {
    let name = d.name(id);
    let own = d
        .snapshot_before(&name, t)
        .and_then(|s| s.lines.as_ref())
        .and_then(|l| l.iter().find(|n| n.id == id))
        .and_then(|n| n.master_of.clone());
    own.or_else(|| {
        d.snapshots
            .iter()
            .filter(|s| s.t_ms <= t)
            .rev()
            .filter_map(|s| s.lines.as_ref())
            .filter_map(|l| l.iter().find(|n| n.id == id))
            .find_map(|n| n.master_of.clone())
    })
}

/// Whether, by `node`'s own log, FAIL about `about` was in force at event `e`.
fn fail_in_view(d: &RunData, e: &NodeEvent, about: &str) -> Option<bool> {
    let mut held = false;
    let mut restarted = false;
    for x in d.events_of(&e.node).filter(|x| x.seq < e.seq) {
        match &x.ev {
            Ev::FailMarked { about: a, .. } | Ev::FailReceived { about: a, .. } if a == about => {
                held = true;
                restarted = false;
            }
            Ev::FailCleared { about: a, .. } if a == about => held = false,
            Ev::Started { .. } if x.seq > 0 => {
                held = false;
                restarted = true;
            }
            _ => {}
        }
    }
    // After a restart nodes.conf may carry the flag without an event.
    if restarted && !held {
        return None;
    }
    Some(held)
}

/// Whether `node` was a master with slots shortly before `t` by its own snapshots
/// (None if none in the 1.5 s before says). Snapshots after the grant are no
/// evidence: a master paused while its replica was promoted grants a vote from its
/// backlog as it resumes, still a master with slots in its own view, and learns of
/// the promotion a moment later.
fn voter_has_slots(d: &RunData, node: &str, t: i64) -> Option<bool> {
    let seen: Vec<bool> = d
        .snapshots
        .iter()
        .filter(|s| s.node == node && s.t_ms <= t && t - s.t_ms <= 1500)
        .filter_map(|s| s.lines.as_ref())
        .filter_map(|l| l.iter().find(|n| n.myself))
        .map(|n| n.master && n.slot_count() > 0)
        .collect();
    if seen.is_empty() {
        None
    } else {
        Some(seen.iter().any(|x| *x))
    }
}

fn vote_rule(d: &RunData, mut r: Rule) -> Rule {
    // (voter, master) -> local time of the last grant for a replica of that master.
    let mut last_vote: BTreeMap<(String, String), i64> = BTreeMap::new();
    let spacing = 2 * d.node_timeout_ms;
    for e in &d.events {
        let Ev::VoteGranted { to, epoch } = &e.ev else {
            continue;
        };
        let t = e.t_ms.unwrap_or(e.local_ms);
        let master = e.raw["master"]
            .as_str()
            .map(str::to_string)
            .or_else(|| master_of(d, to, t));
        let force = e.raw["force_ack"].as_bool() == Some(true);
        let mut broken: Vec<String> = Vec::new();
        let mut judged = false;
        if let Some(m) = &master {
            if !force {
                match fail_in_view(d, e, m) {
                    Some(false) => {
                        judged = true;
                        broken.push(format!(
                            "the candidate's master {} was not FAIL in the voter's view",
                            d.name(m)
                        ));
                    }
                    Some(true) => judged = true,
                    None => {}
                }
            }
            let key = (e.node.clone(), m.clone());
            if let Some(prev) = last_vote.get(&key) {
                judged = true;
                if e.local_ms - prev < spacing - TOL_MS {
                    broken.push(format!(
                        "it voted for a replica of {} {} ms earlier (less than 2 x node_timeout)",
                        d.name(m),
                        e.local_ms - prev
                    ));
                }
            }
            last_vote.insert(key, e.local_ms);
        }
        // A node that reports its own state with the grant (hearsay) is judged by
        // that report below, which is exact where snapshots are seconds apart.
        let reported = e.raw.get("voter_is_master").is_some();
        match voter_has_slots(d, &e.node, t).filter(|_| !reported) {
            Some(false) => {
                judged = true;
                broken.push("the voter was not a master with slots".into());
            }
            Some(true) => judged = true,
            None => {}
        }
        // hearsay reports its state with the grant: re-check it.
        let raw = &e.raw;
        if raw.get("master_fail").is_some() {
            judged = true;
            if raw["master_fail"] == false && raw["force_ack"] != true {
                broken.push("reported: master not FAIL".into());
            }
            if raw["voter_is_master"] == false || raw["voter_slots"].as_u64() == Some(0) {
                broken.push("reported: voter not a master with slots".into());
            }
            if let (Some(lv), Some(now)) = (
                raw["last_vote_for_master_ms"].as_i64(),
                raw["now_ms"].as_i64(),
            ) {
                if lv > 0 && now - lv < spacing {
                    broken.push(format!(
                        "reported: previous vote for that master {} ms ago",
                        now - lv
                    ));
                }
            }
            if let (Some(claimed), Some(req)) = (
                raw["claimed_slots_max_epoch"].as_u64(),
                raw["req_config_epoch"].as_u64(),
            ) {
                if claimed > req {
                    broken.push(format!(
                        "reported: a claimed slot is owned at configEpoch {claimed} > the request's {req}"
                    ));
                }
            }
        }
        if !judged {
            r.unjudged += 1;
            continue;
        }
        r.cases += 1;
        if !broken.is_empty() {
            r.violate(json!({
                "voter": e.node, "candidate": d.name(to), "epoch": epoch,
                "master": master.as_ref().map(|m| d.name(m)), "t_ms": e.t_ms,
                "broken": broken,
                "effect": format!("{} granted {} a vote it should have refused", e.node, d.name(to)),
            }));
        }
    }
    r
}

/// Masters with slots in `node`'s view just before `t`.
fn masters_with_slots(d: &RunData, node: &str, t: i64) -> Option<usize> {
    d.snapshot_before(node, t)
        .and_then(|s| s.lines.as_ref())
        .map(|l| l.iter().filter(|n| n.master && n.slot_count() > 0).count())
        .filter(|c| *c > 0)
}

fn won_rule(d: &RunData, mut r: Rule) -> Rule {
    for node in &d.nodes {
        let ids = id_of(d, node);
        let mut epoch: Option<u64> = None;
        for e in d.events_of(node) {
            match &e.ev {
                Ev::FailoverStarted { epoch: ep, .. } => epoch = *ep,
                Ev::FailoverWon { epoch: won_ep, .. } => {
                    let Some(ep) = won_ep.or(epoch) else {
                        r.unjudged += 1;
                        continue;
                    };
                    let Some(t) = e.t_ms else {
                        r.unjudged += 1;
                        continue;
                    };
                    // Grants logged by their voters for this candidate and epoch.
                    let voters: BTreeSet<&str> = d
                        .events
                        .iter()
                        .filter(|v| {
                            matches!(&v.ev, Ev::VoteGranted { to, epoch: Some(x) }
                                if ids.contains(to) && *x == ep)
                        })
                        .filter(|v| v.t_ms.is_some_and(|tv| tv - v.slack_ms <= t + TOL_MS))
                        .map(|v| v.node.as_str())
                        .collect();
                    let needed = e.raw["needed"]
                        .as_u64()
                        .map(|n| n as usize)
                        .or_else(|| masters_with_slots(d, node, t).map(|m| m / 2 + 1));
                    let Some(needed) = needed else {
                        r.unjudged += 1;
                        continue;
                    };
                    // The candidate's own count of acks received before the win.
                    let acks = d
                        .events_of(node)
                        .filter(|a| a.seq < e.seq)
                        .filter(|a| matches!(&a.ev, Ev::AuthAck { epoch: x, counted: true, .. } if *x == ep))
                        .count();
                    r.cases += 1;
                    let own = e.raw.get("needed").is_some();
                    if voters.len() < needed || (own && acks < needed) {
                        r.violate(json!({
                            "node": node, "epoch": ep, "t_ms": t,
                            "grants_logged_before_win": voters, "needed": needed,
                            "acks_counted_before_win": if own { json!(acks) } else { json!(null) },
                            "effect": format!(
                                "{node} won the election of epoch {ep} with {} grant(s) before the win; {needed} needed",
                                if own { voters.len().min(acks) } else { voters.len() }
                            ),
                        }));
                    }
                }
                _ => {}
            }
        }
    }
    r
}

/// The liveness bound: detection (node_timeout plus gossip), the election delay
/// (up to 1 s plus rank), and one failed election's retry (twice the auth timeout of
/// max(2 x node_timeout, 2 s)), with margin: 6 x node_timeout + 5 s.
pub fn liveness_bound_ms(node_timeout_ms: i64) -> i64 {
    6 * node_timeout_ms + 5000
}

/// Whether `node`'s replication link was up at `t`: its last link event at or
/// before `t` says up (no event at all: it never synced).
fn link_up_at(d: &RunData, node: &str, t: i64) -> bool {
    d.events
        .iter()
        .filter(|e| e.node == node && e.t_ms.is_some_and(|x| x <= t))
        .filter_map(|e| match e.ev {
            Ev::ReplLink { up } => Some((e.t_ms, e.seq, up)),
            _ => None,
        })
        .max_by_key(|(t, seq, _)| (*t, *seq))
        .is_some_and(|(_, _, up)| up)
}

/// Node reachability at a time, from the fault windows in force then.
struct Faults<'a> {
    d: &'a RunData,
    end: i64,
}

impl Faults<'_> {
    fn active(&self, t: i64) -> impl Iterator<Item = &crate::run_data::FaultWindow> + '_ {
        self.d
            .faults
            .iter()
            .filter(move |f| f.start_ms <= t && t < f.stop_ms.unwrap_or(self.end))
    }

    fn down(&self, n: &str, t: i64) -> bool {
        self.active(t).any(|f| {
            matches!(f.kind.as_str(), "pause" | "kill") && f.targets.iter().any(|x| x == n)
        })
    }

    fn cut(&self, a: &str, b: &str, t: i64) -> bool {
        self.active(t).any(|f| {
            f.kind == "partition"
                && (f.grudge.get(a).is_some_and(|v| v.iter().any(|x| x == b))
                    || f.grudge.get(b).is_some_and(|v| v.iter().any(|x| x == a)))
        })
    }

    /// Packets may be lost or late (loss, delay): reachability is not certain.
    fn degraded(&self, t: i64) -> bool {
        self.active(t)
            .any(|f| matches!(f.kind.as_str(), "loss" | "delay" | "clock"))
    }

    /// Times at which the fault state can change, within [from, to].
    fn bounds(&self, from: i64, to: i64) -> Vec<i64> {
        let mut b: Vec<i64> = self
            .d
            .faults
            .iter()
            .flat_map(|f| [Some(f.start_ms), f.stop_ms])
            .flatten()
            .filter(|x| *x > from && *x < to)
            .collect();
        b.push(from);
        b.sort_unstable();
        b.dedup();
        b
    }
}

fn liveness_rule(d: &RunData, mut r: Rule) -> Rule {
    // A test that pins hearsay-node's election delay moves every election by it.
    let pinned = d.election_delay_ms.unwrap_or(0);
    let base_bound = liveness_bound_ms(d.node_timeout_ms) + pinned;
    let bound = base_bound;
    r.notes.push(format!(
        "bound: 6 x node_timeout + 5 s{} = {bound} ms from the moment a replica of the failed master can reach a majority of masters",
        if pinned > 0 { " + the pinned election delay" } else { "" }
    ));
    let end = d.heal_ms.unwrap_or(i64::MAX);
    let fs = Faults { d, end };
    // Runs recorded before the nodes logged their replication link have no evidence
    // of which replicas were eligible: their cases are not judged.
    let link_evidence = d.events.iter().any(|e| matches!(e.ev, Ev::ReplLink { .. }));
    if !link_evidence {
        r.notes.push(
            "no replication-link events in the node logs: which replicas could fail over is unknown, so no case is judged"
                .into(),
        );
    }
    let mut judged: BTreeSet<(String, i64)> = BTreeSet::new();
    for f in d
        .faults
        .iter()
        .filter(|f| matches!(f.kind.as_str(), "pause" | "kill" | "partition"))
    {
        // Masters with slots and their replicas just before the fault, as the last
        // answering snapshot saw.
        let Some(view) = d
            .snapshots
            .iter()
            .filter(|s| s.t_ms <= f.start_ms)
            .rev()
            .find_map(|s| s.lines.clone())
        else {
            continue;
        };
        let masters: Vec<String> = view
            .iter()
            .filter(|n| n.master && n.slot_count() > 0)
            .map(|n| d.name(&n.id))
            .collect();
        let needed = masters.len() / 2 + 1;
        for m in view.iter().filter(|n| n.master && n.slot_count() > 0) {
            let mname = d.name(&m.id);
            let failed = |t: i64| {
                fs.down(&mname, t)
                    || masters
                        .iter()
                        .filter(|o| **o == mname || !fs.cut(&mname, o, t))
                        .count()
                        < needed
            };
            if !failed(f.start_ms) || !judged.insert((mname.clone(), f.start_ms)) {
                continue;
            }
            let all_replicas: Vec<String> = view
                .iter()
                .filter(|n| n.master_of.as_deref() == Some(m.id.as_str()))
                .map(|n| d.name(&n.id))
                .collect();
            // Redis's replica validity rule: a replica whose link to the master was
            // not up when the master failed (never synced, or lost before) has no
            // data fresh enough to fail over with ("Currently unable to failover:
            // Disconnected from master for longer than allowed"), so it is no
            // candidate the bound can wait for.
            let replicas: Vec<String> = match link_evidence {
                false => all_replicas,
                true => {
                    let (fresh, stale): (Vec<String>, Vec<String>) = all_replicas
                        .into_iter()
                        .partition(|rn| link_up_at(d, rn, f.start_ms));
                    if !stale.is_empty() {
                        r.notes.push(format!(
                            "{mname} failed at {} ms: {} not counted as candidate(s), their replication link was not up then",
                            f.start_ms,
                            stale.join(", ")
                        ));
                    }
                    fresh
                }
            };
            if replicas.is_empty() {
                continue;
            }
            let able = |t: i64| {
                !fs.degraded(t)
                    && replicas.iter().any(|rn| {
                        !fs.down(rn, t)
                            && masters
                                .iter()
                                .filter(|o| **o != mname && !fs.down(o, t) && !fs.cut(rn, o, t))
                                .count()
                                >= needed
                    })
            };
            // The master's failure: from the fault's start while it holds.
            let horizon = f.start_ms + 4 * bound;
            let pts = fs.bounds(f.start_ms, horizon.min(end));
            let fail_end = pts
                .iter()
                .copied()
                .find(|t| !failed(*t))
                .unwrap_or(end.min(horizon));
            // From when a replica can win, continuously for the bound.
            let Some(t0) = pts.iter().copied().find(|t| able(*t) && *t < fail_end) else {
                continue;
            };
            // A backward clock step inside the window blinds detection and
            // elections for its size (see `RunData::backward_clock_steps`).
            let (extra, steps) = d.clock_step_allowance(t0, base_bound);
            let bound = base_bound + extra;
            if fail_end - t0 < bound {
                continue;
            }
            if pts.iter().any(|t| *t > t0 && *t < t0 + bound && !able(*t)) {
                r.unjudged += 1;
                continue;
            }
            if !link_evidence {
                r.unjudged += 1;
                continue;
            }
            r.cases += 1;
            let slot = m.slots.first().map(|(a, _)| *a);
            let replaced = d
                .snapshots
                .iter()
                .filter(|s| s.t_ms > f.start_ms && s.t_ms <= t0 + bound)
                .filter(|s| s.node != mname)
                .filter_map(|s| s.lines.as_ref())
                .any(|l| {
                    l.iter().any(|n| {
                        n.master
                            && n.id != m.id
                            && slot.is_some_and(|x| n.slots.iter().any(|(a, b)| *a <= x && x <= *b))
                    })
                });
            if !replaced {
                let able_now: Vec<&String> = replicas.iter().filter(|_| able(t0)).collect();
                r.violate(json!({
                    "master": mname, "fault": f.kind, "failed_from_ms": f.start_ms,
                    "failed_until_ms": fail_end, "replica_able_from_ms": t0,
                    "replicas": able_now, "bound_ms": bound,
                    "clock_steps": steps,
                    "effect": format!(
                        "{mname} stayed failed from {} to {fail_end} ms while a replica could reach a majority of masters from {t0} ms, and was not replaced within {bound} ms",
                        f.start_ms
                    ),
                }));
            }
        }
    }
    r
}
