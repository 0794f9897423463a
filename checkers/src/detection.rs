//! Failure-detection rules of redis 7.0, judged per decision from each node's own
//! events (and, where a server's log carries less, from its snapshots):
//!
//! - **pfail-after-node-timeout** (clusterCron): a node flags another PFAIL only when
//!   it has a ping outstanding and min(now - ping_sent, now - data_received) exceeds
//!   node_timeout. Judged from the times hearsay-node reports with the decision;
//!   redis-server logs no such times, so its PFAILs are counted as not judgeable.
//! - **fail-cleared-by-the-rules** (clearNodeFailureIfNeeded): FAIL about a replica or
//!   a master without slots is cleared when it is reachable again; about a master that
//!   still serves slots only once more than 2 x node_timeout has passed since the FAIL.
//!   Judged against the clearing node's own FAIL event time (its local clock, as redis
//!   measures) and its own snapshots of the failed node's role and slots; hearsay's
//!   reported fields are checked too.

use serde_json::json;

use crate::run_data::{Ev, NodeEvent, RunData};
use crate::verdict::Rule;

/// Tolerance on local-clock differences (event stamps are taken right after the
/// decision; snapshots are a second apart).
const TOL_MS: i64 = 50;

/// Both rules.
pub fn check(d: &RunData) -> Vec<Rule> {
    let pfail = Rule::new(
        "pfail-after-node-timeout",
        "PFAIL only with a ping outstanding and no ping reply or data for more than node_timeout",
    );
    let clear = Rule::new(
        "fail-cleared-by-the-rules",
        "FAIL of a master that still serves slots cleared only after 2 x node_timeout; of a replica or slotless master when reachable",
    );
    if let Some(why) = d.events_unusable() {
        return vec![pfail.not_judged(why.clone()), clear.not_judged(why)];
    }
    vec![pfail_rule(d, pfail), clear_rule(d, clear)]
}

fn pfail_rule(d: &RunData, mut r: Rule) -> Rule {
    for e in &d.events {
        let Ev::PfailSet { about } = &e.ev else {
            continue;
        };
        let f = |k: &str| e.raw[k].as_i64();
        let (Some(ping), Some(data), Some(now)) =
            (f("ping_sent_ms"), f("data_received_ms"), f("now_ms"))
        else {
            r.unjudged += 1;
            continue;
        };
        r.cases += 1;
        let nt = f("node_timeout_ms").unwrap_or(d.node_timeout_ms);
        let delay = (now - ping).min(now - data);
        if ping == 0 || delay <= nt {
            r.violate(json!({
                "node": e.node, "about": d.name(about), "t_ms": e.t_ms,
                "ping_sent_ms": ping, "data_received_ms": data, "now_ms": now,
                "node_delay_ms": delay, "node_timeout_ms": nt,
                "effect": if ping == 0 {
                    format!("{} flagged {} PFAIL with no ping outstanding", e.node, d.name(about))
                } else {
                    format!("{} flagged {} PFAIL after {delay} ms without a reply (node_timeout {nt} ms)", e.node, d.name(about))
                },
            }));
        }
    }
    if r.unjudged > 0 {
        r.notes.push(format!(
            "{} PFAIL decisions carry no ping/data times (redis-server does not log them)",
            r.unjudged
        ));
    }
    r
}

/// The observer's FAIL about `about` in force at `e`, by its own log.
enum FailState {
    /// Set at this local time (the latest FAIL event with no clear in between).
    Since(i64),
    /// Not in force.
    NotHeld,
    /// Unknown: the node restarted since, and nodes.conf may have carried the flag.
    AfterRestart,
}

fn fail_since(d: &RunData, e: &NodeEvent, about: &str) -> FailState {
    let mut since = FailState::NotHeld;
    for x in d.events_of(&e.node).filter(|x| x.seq < e.seq) {
        match &x.ev {
            Ev::FailMarked { about: a, .. } | Ev::FailReceived { about: a, .. }
                if a == about && !matches!(since, FailState::Since(_)) =>
            {
                since = FailState::Since(x.local_ms);
            }
            Ev::FailCleared { about: a, .. } if a == about => since = FailState::NotHeld,
            Ev::Started { .. } if x.seq > 0 || !matches!(since, FailState::NotHeld) => {
                since = FailState::AfterRestart
            }
            _ => {}
        }
    }
    since
}

/// How `observer` saw `about` in its snapshots around `t`: Some(true) when every
/// snapshot in [t - 1.5 s, t + 1.5 s] shows it a master with slots, Some(false) when
/// every one shows it a replica or slotless, None when they disagree or are missing.
fn serves_slots(d: &RunData, observer: &str, about: &str, t: i64) -> Option<bool> {
    let seen: Vec<bool> = d
        .snapshots
        .iter()
        .filter(|s| s.node == observer && (s.t_ms - t).abs() <= 1500)
        .filter_map(|s| s.lines.as_ref())
        .filter_map(|l| l.iter().find(|n| n.id == about))
        .map(|n| n.master && n.slot_count() > 0)
        .collect();
    match (seen.iter().all(|x| *x), seen.iter().any(|x| *x)) {
        _ if seen.is_empty() => None,
        (true, _) => Some(true),
        (false, false) => Some(false),
        _ => None,
    }
}

/// Whether `e.node`'s last snapshot before `t` (since its last start) listed
/// `about` as a known node without FAIL: it knew the node, so a FAIL it clears
/// later must have come through a logged decision or FAIL message.
fn knew_it_unfailed(d: &RunData, e: &NodeEvent, about: &str, t: i64) -> bool {
    let started = d
        .events_of(&e.node)
        .filter(|x| x.seq < e.seq && matches!(x.ev, Ev::Started { .. }))
        .filter_map(|x| x.t_ms)
        .last()
        .unwrap_or(i64::MIN);
    d.snapshots
        .iter()
        .rev()
        .filter(|s| s.node == e.node && s.t_ms > started && s.t_ms < t)
        .find_map(|s| s.lines.as_ref())
        .is_some_and(|lines| {
            lines
                .iter()
                .any(|n| n.id == about && !n.fail && !n.handshake)
        })
}

fn clear_rule(d: &RunData, mut r: Rule) -> Rule {
    let window = 2 * d.node_timeout_ms;
    let mut learned_in_gossip = 0;
    for e in &d.events {
        let Ev::FailCleared { about, reason } = &e.ev else {
            continue;
        };
        let Some(t) = e.t_ms else {
            r.unjudged += 1;
            continue;
        };
        let since = match fail_since(d, e, about) {
            FailState::Since(s) => s,
            FailState::AfterRestart => {
                r.unjudged += 1;
                continue;
            }
            FailState::NotHeld if !knew_it_unfailed(d, e, about, t) => {
                // redis creates a node first heard of in gossip with the
                // gossip's flags, FAIL included, and logs nothing: a node that
                // joined (or was reset) after the FAIL may clear one it never
                // logged.
                r.unjudged += 1;
                learned_in_gossip += 1;
                continue;
            }
            FailState::NotHeld => {
                // A clear without a FAIL in force in the node's own log, though
                // its last snapshot before showed the node known and not FAIL.
                r.cases += 1;
                r.violate(json!({
                    "node": e.node, "about": d.name(about), "t_ms": t, "reason": reason,
                    "effect": format!("{} cleared FAIL of {} without holding FAIL", e.node, d.name(about)),
                }));
                continue;
            }
        };
        // hearsay reports the core's own times with the decision: judge those (a
        // line's stamp is taken when it is written, which a SIGSTOP between decision
        // and write can delay). redis stamps its log line as it decides.
        let own_times = (e.raw["fail_time_ms"].as_i64(), e.raw["now_ms"].as_i64());
        let held = match own_times {
            (Some(f), Some(n)) => n - f,
            _ => e.local_ms - since,
        };
        let tol = if own_times.0.is_some() { 0 } else { TOL_MS };
        // The node's own account of the cleared node (hearsay), and its snapshots.
        let own = e.raw["role"].as_str().map(|role| {
            let slots = e.raw["slots"].as_u64().unwrap_or(0);
            role == "master" && slots > 0
        });
        let by_snapshots = serves_slots(d, &e.node, about, t);
        // The node's own account, taken at the decision, wins: a snapshot up to
        // 1.5 s away may show the slots the node had just lost (a failover).
        let master_with_slots = own.or(by_snapshots);
        let Some(serves) = master_with_slots else {
            r.unjudged += 1;
            continue;
        };
        r.cases += 1;
        if serves && held <= window - tol {
            r.violate(json!({
                "node": e.node, "about": d.name(about), "t_ms": t, "reason": reason,
                "fail_held_ms": held, "node_timeout_ms": d.node_timeout_ms,
                "fail_time_ms": own_times.0, "now_ms": own_times.1,
                "effect": format!(
                    "{} cleared FAIL of {} (a master serving slots) {held} ms after setting it; redis waits more than 2 x node_timeout ({window} ms)",
                    e.node, d.name(about)
                ),
            }));
        }
    }
    if r.unjudged > learned_in_gossip {
        r.notes.push(format!(
            "{} FAIL clears without a snapshot of the cleared node's role around them",
            r.unjudged - learned_in_gossip
        ));
    }
    if learned_in_gossip > 0 {
        r.notes.push(format!(
            "{learned_in_gossip} FAIL clears of a node the clearer had no logged FAIL for and did not know unfailed in its last snapshot (redis creates a node first heard of in gossip with its FAIL flag, unlogged)"
        ));
    }
    r
}
